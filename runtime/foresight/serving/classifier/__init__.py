"""The image classifier service (seed 003): an LLM- or ONNX-backed classifier with a SHA-256 result cache.

``create_app(config)`` builds the FastAPI application; ``run(config)`` serves it with uvicorn.
"""
