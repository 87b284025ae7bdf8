"""A Flask route (bench/run.py workload `flask`)."""

from flask import Flask

app = Flask(__name__)


@app.route("/")
def hello():
    return "Hello, World!\n", 200, {"Content-Type": "text/plain"}
