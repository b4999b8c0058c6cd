"""CAP 1.2 / 1.1 (预警 CAP): safe XML loading, parsing into frozen values, signature checks and conversion to a MessageDraft. Pure: no I/O."""
