"""A FastAPI JSON route (bench/asgi.py workload `fastapi`): GET /json, and
GET / with the same answer, return {"message":"Hello, World!"}."""

from fastapi import FastAPI

app = FastAPI()


@app.get("/json")
@app.get("/")
async def json_hello():
    return {"message": "Hello, World!"}
