"""Cable-TV adapter: EB private sections (sections), inserter link (link), adapter (adapter)."""
