uvicorn project.asgi:application
