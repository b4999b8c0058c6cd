"""Stage 3, pipeline (播发流程): one broadcast through its system-driven lifecycle: record, audio, dispatch, completion, resume after a restart."""
