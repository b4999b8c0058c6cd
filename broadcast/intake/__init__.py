"""Stage 1b, intake (接收): a submitted document (CAP, JSON message, upper-platform EBM) becomes a desk decision or one clear refusal."""
