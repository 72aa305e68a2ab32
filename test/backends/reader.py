"""A Python backend behind the middleware, for the end-to-end tests: it reads each request
the ways Python backends do (json.loads of the bytes, urllib.parse.parse_qs, Flask's
get_json, form, values and args) and answers what it read as JSON, for the test to hold
against the X-Zego-* headers the middleware wrote.

Run with: python3 reader.py <port>; it prints "listening" once it serves.
"""
import json
import sys
import urllib.parse

from flask import Flask, request
from werkzeug.serving import make_server

app = Flask(__name__)


def as_object(value):
    return value if isinstance(value, dict) and value else None


def first_values(multi):
    """A form's first value by name, as request.form[name] and request.values[name] give."""
    out = {name: multi.get(name) for name in multi.keys()}
    return out or None


@app.route("/", defaults={"path": ""}, methods=["GET", "POST"])
@app.route("/<path:path>", methods=["GET", "POST"])
def report(path):
    body = request.get_data(cache=True)
    headers = {name: value for name, value in request.headers.items() if name.lower().startswith("x-zego")}
    readings = {}
    try:
        # json.loads detects UTF-8, UTF-16 and UTF-32 from the bytes themselves.
        readings["json_loads"] = as_object(json.loads(body))
    except ValueError:
        readings["json_loads"] = None
    # parse_qs where the Content-Type says form, as a backend that dispatches on it does.
    readings["parse_qs"] = None
    if request.mimetype == "application/x-www-form-urlencoded":
        try:
            qs = urllib.parse.parse_qs(body.decode("utf-8"), keep_blank_values=True)
            readings["parse_qs"] = {k: v[0] for k, v in qs.items()} or None
        except (UnicodeDecodeError, ValueError):
            pass
    readings["flask_json"] = as_object(request.get_json(silent=True, force=False))
    readings["flask_form"] = first_values(request.form)
    readings["flask_values"] = first_values(request.values)
    readings["flask_args"] = first_values(request.args)
    return app.response_class(json.dumps({"backend": "python", "headers": headers, "readings": readings}),
                              mimetype="application/json")


if __name__ == "__main__":
    server = make_server("127.0.0.1", int(sys.argv[1]), app, threaded=True)
    print("listening", flush=True)
    server.serve_forever()
