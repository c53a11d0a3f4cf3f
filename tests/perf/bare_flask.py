"""The ceiling compare.py measures: a bare Flask app answering a small JSON object, served by the
same gunicorn command line as the provider (servers.gunicorn_command). No framework can answer
faster than this under those settings on the same machine at the same moment."""

from flask import Flask

app = Flask(__name__)


@app.get("/")
def hello():
    return {"status": "ok"}
