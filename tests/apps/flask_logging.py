"""Flask's documented recipe for logging under Gunicorn: the app logger takes
the handlers of `gunicorn.error`, so app messages reach the server's log."""

import logging

from flask import Flask

app = Flask(__name__)
gunicorn_logger = logging.getLogger("gunicorn.error")
app.logger.handlers = gunicorn_logger.handlers
app.logger.setLevel(gunicorn_logger.level)


@app.get("/")
def index():
    app.logger.info("hello from the flask app")
    app.logger.debug("not at the info level")
    logging.getLogger("gunicorn.access").info("an access record")
    return "logged\n"
