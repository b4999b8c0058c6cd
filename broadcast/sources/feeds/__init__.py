"""CAP feeds (预警信息源): configuration, feed formats and the poller that hands each new CAP document to intake once."""
