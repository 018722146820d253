"""The HTTP application: FastAPI app factory, request dependencies, error mapping."""
