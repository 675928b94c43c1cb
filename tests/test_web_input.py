"""Bad input to the web app: traversal and foreign URIs never reach a file system, forms are checked,
unknown names are a 4xx page saying what was wrong, secrets and tokens never appear, and a
non-local bind without a token refuses to start."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import httpx
import pytest

from web_support import csrf_of, serve, signed_in

HOSTILE = ["../", "../../../../etc/passwd", "/etc/passwd", "file:///etc/passwd", "s3://another-bucket/x",
           "md/../../etc/passwd", "..%2F..%2Fetc%2Fpasswd", "C:\\Windows\\win.ini"]


class Opens:
    """Paths opened (audit event 'open') while recording: proof that nothing outside the store was read."""

    def __init__(self):
        self.paths: list[str] = []
        self.on = False
        sys.addaudithook(self._hook)

    def _hook(self, event, args):
        if self.on and event == "open" and isinstance(args[0], str):
            self.paths.append(args[0])


OPENS = Opens()


def test_image_routes_take_only_stored_uris(md):
    with serve(md.store) as server, httpx.Client(base_url=server.url) as http:
        fid = md.to_arrow(["frame_id"])["frame_id"][0].as_py()
        OPENS.paths.clear()
        OPENS.on = True
        try:
            for bad in HOSTILE:
                for size in ("thumb", "display"):
                    for params in ({"dataset": bad, "frame_id": fid}, {"dataset": "md", "frame_id": bad}):
                        r = http.get(f"/image/{size}", params=params)
                        assert r.status_code in (400, 404), (params, r.status_code)
                        assert "image" not in r.headers["content-type"]
                    r = http.get(f"/image/{size}", params={"dataset": "md", "frame_id": fid, "path": bad})
                    assert r.status_code == 400 and "only dataset and frame_id" in r.text
                r = http.get(f"/image/{bad}", params={"dataset": "md", "frame_id": fid})
                if "/" in bad:  # the client normalises such a path to another route, never to an image
                    assert r.status_code < 500 and "image" not in r.headers.get("content-type", "")
                else:
                    assert r.status_code in (400, 404)
        finally:
            OPENS.on = False
        outside = [p for p in OPENS.paths if "passwd" in p or "win.ini" in p or "another-bucket" in p]
        assert outside == []


def test_images_are_cached_with_etags_and_unreadable_ones_are_placeholders(md, tmp_path):
    cache = tmp_path / "cache"
    with serve(md.store, cache_dir=str(cache)) as server, httpx.Client(base_url=server.url) as http:
        ids = md.to_arrow(["frame_id", "uri"]).to_pylist()
        readable = next(r["frame_id"] for r in ids if _exists(r["uri"]))
        missing = next(r["frame_id"] for r in ids if not _exists(r["uri"]))
        first = http.get("/image/thumb", params={"dataset": "md", "frame_id": readable})
        assert first.status_code == 200 and first.headers["content-type"] == "image/jpeg"
        assert first.content[:2] == b"\xff\xd8" and "max-age" in first.headers["cache-control"]
        assert len(list(cache.glob("*.jpg"))) == 1
        again = http.get("/image/thumb", params={"dataset": "md", "frame_id": readable},
                         headers={"If-None-Match": first.headers["etag"]})
        assert again.status_code == 304 and again.content == b""
        gone = http.get("/image/display", params={"dataset": "md", "frame_id": missing})
        assert gone.status_code == 200 and gone.headers["content-type"] == "image/svg+xml"
        assert gone.headers["x-hyperds-image-error"] == "file not found" and b"file not found" in gone.content
        assert len(list(cache.glob("*.jpg"))) == 1  # a failure is not cached


def _exists(uri: str) -> bool:
    from pathlib import Path

    return Path(uri.removeprefix("file://")).exists()


def test_forms_are_checked_and_unknown_names_are_4xx_pages(md):
    with serve(md.store) as server:
        http, csrf = signed_in(server.url, "ana")
        fid = md.to_arrow(["frame_id"])["frame_id"][0].as_py()
        base = {"csrf": csrf, "dataset": "md", "q": "TRUE", "frame_id": fid, "revision": "0", "action": "accept"}
        cases = [
            ({"revision": "zero"}, 400, "field &#39;revision&#39; must be a whole number"),
            ({"action": "delete-all"}, 400, "field &#39;action&#39; must be one of"),
            ({"action": "box", "label": "zebra", "bbox": "1,2"}, 400, "field &#39;bbox&#39; must be 4 numbers"),
            ({"action": "move", "ann_id": "nope", "bbox": "0.1,0.1,0.2,0.2"}, 400, "must name an annotation"),
            ({"action": "relabel", "ann_id": fid + ":0", "label": ""}, 400, "field &#39;label&#39; is missing"),
            ({"note": "a\x00b"}, 400, "control characters"),
            ({"q": None}, 400, "needs a view"),
            ({"csrf": "forged"}, 403, "CSRF check failed"),
            ({"dataset": "nope"}, 404, "dataset &#39;nope&#39; does not exist"),
            ({"frame_id": "nope"}, 404, "frame &#39;nope&#39; is not in dataset"),
        ]
        version = md.version
        for change, status, text in cases:
            form = {k: v for k, v in {**base, **change}.items() if v is not None}
            r = http.post("/review/decide", data=form)
            assert r.status_code == status, (change, r.status_code, r.text[-500:])
            assert text in r.text, (change, r.text[-800:])
        assert md.version == version and md.commits().height == 0  # nothing was written
        for url, status, text in [
            ("/frame?dataset=md&frame_id=nope", 404, "is not in dataset"),
            ("/frame?dataset=md", 400, "field &#39;frame_id&#39; is missing"),
            ("/browse?dataset=nope", 404, "does not exist"),
            ("/browse?view=nope", 404, "view &#39;nope&#39;"),
            ("/views/diff?name=nope&old=1.0&new=1.1", 404, "view &#39;nope&#39;"),
            ("/review?dataset=md&view=nope", 404, "view &#39;nope&#39;"),
            ("/api/frame?dataset=md&frame_id=nope", 404, "is not in dataset"),
            ("/nowhere", 404, ""),
        ]:
            r = http.get(url)
            assert r.status_code == status and text in r.text, (url, r.status_code, r.text[-500:])
        r = http.get("/review", params={"dataset": "md", "q": "labl = 1"})
        assert r.status_code == 400 and "unknown column" in r.text
        r = http.get("/signout")  # changes are POST only
        assert r.status_code == 405
        http.close()


def test_token_sign_in_and_no_secrets_anywhere(tmp_path, caplog):
    import hyperds
    from hyperds.frames.importers import import_megadetector

    from conftest import MD_JSON

    secret = "SECRETabc123"
    store = hyperds.connect(tmp_path / "store", storage_options={"aws_secret_access_key": secret, "region": "x"})
    import_megadetector(store.create_dataset("md"), MD_JSON)
    fid = store.dataset("md").to_arrow(["frame_id"])["frame_id"][0].as_py()
    token = "tok-" + "9" * 20
    caplog.set_level(logging.DEBUG)
    with serve(store, token=token) as server:
        anonymous = httpx.Client(base_url=server.url)
        assert anonymous.get("/").status_code == 303  # to the sign-in page
        assert anonymous.get("/api/frame", params={"dataset": "md", "frame_id": fid}).status_code == 401
        page = anonymous.get("/signin")
        wrong = anonymous.post("/signin", data={"csrf": csrf_of(page.text), "name": "eve", "token": "guess"})
        assert wrong.status_code == 400 and "wrong token" in wrong.text
        no_name = anonymous.post("/signin", data={"csrf": csrf_of(page.text), "token": token})
        assert no_name.status_code == 400
        http, _ = signed_in(server.url, "ana", token=token)
        bodies = [wrong.text]
        for url in ["/", "/browse?dataset=md", f"/frame?dataset=md&frame_id={fid}", "/views", "/api/facets?dataset=md",
                    f"/api/frame?dataset=md&frame_id={fid}", f"/image/thumb?dataset=md&frame_id={fid}"]:
            r = http.get(url)
            assert r.status_code == 200, url
            bodies.append(r.text if "image" not in r.headers["content-type"] else "")
            bodies.append(str(r.headers))
        anonymous.close()
        http.close()
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for text in bodies + [logged]:
        assert secret not in text and token not in text


def test_non_local_bind_without_token_refuses_to_start(store, capsys):
    from hyperds.cli.main import main
    from hyperds.cli.serve import check_bind, is_local

    for argv in (["--host", "0.0.0.0"], ["--host", "192.168.1.5", "--port", "1"]):
        assert main(["--store", store.uri, "serve", *argv]) == 2
        err = capsys.readouterr().err
        assert "without a token" in err and "Traceback" not in err
    # --store after the command is the store served: a file there is refused, naming it (and the check of
    # the bind comes first only for a non-local host)
    bogus = Path(store.uri) / "not-a-store.txt"
    bogus.write_text("x")
    assert main(["serve", "--store", str(bogus), "--port", "1"]) == 2
    err = capsys.readouterr().err
    assert "as a store" in err and "not-a-store.txt" in err and "Traceback" not in err
    assert is_local("127.0.0.1") and is_local("::1") and is_local("localhost") and not is_local("0.0.0.0")
    assert check_bind("127.0.0.1", None) is None and len(check_bind("0.0.0.0", "auto")) >= 24


def test_serve_help(capsys):
    from hyperds.cli.main import main

    with pytest.raises(SystemExit) as exit_:
        main(["serve", "--help"])
    out = capsys.readouterr().out
    assert exit_.value.code == 0 and "--token" in out and "127.0.0.1" in out


BAD_SQL = ["site > 5", "frame_id IN (1, 2)", "SELECT frame_id FROM other", "labl = 'x'", "DROP TABLE md", "'",
           "((((", "any_annotation(", "site = 'S07' OR", "width + 'a' > 1", "SELECT frame_id FROM md LIMIT -1"]


def test_sql_box_errors_are_400_pages_never_500(md):
    with serve(md.store) as server, httpx.Client(base_url=server.url) as http:
        for q in BAD_SQL:
            page = http.get("/browse", params={"dataset": "md", "q": q})
            assert page.status_code in (200, 400), (q, page.status_code)
            if page.status_code == 400:
                assert 'id="query-error"' in page.text, q
            for url in ("/api/facets", "/review"):
                r = http.get(url, params={"dataset": "md", "q": q})
                assert r.status_code < 500, (url, q, r.status_code)
