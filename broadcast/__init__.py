"""The county emergency broadcast controller (县级应急广播平台): core pipeline, storage, web, CLI."""
