"""The HTTP adapter: the FastAPI app (`app.create_app`), its routes, schemas and problems."""
