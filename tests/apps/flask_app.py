"""A small Flask app: GET / and a JSON echo on POST /echo."""

from flask import Flask, jsonify, request

app = Flask(__name__)


@app.get("/")
def index():
    return "flask ok\n"


@app.post("/echo")
def echo():
    return jsonify(received=request.get_json(), method=request.method)
