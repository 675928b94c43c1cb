"""store.sql reads only the store's relations and calls only known pure functions: polars' table
functions (read_csv and friends) that would read any file of the process are refused, with the
position of the offending call."""

from __future__ import annotations

import pytest

from hyperds.errors import QueryError


@pytest.fixture
def st(store, tmp_path):
    store.create_dataset("cams").add_frames([
        {"frame_id": "a", "uri": "a.jpg", "site": "S1", "captured_at": "2024-01-02T03:04:05Z",
         "annotations": [{"label": "Deer"}]},
        {"frame_id": "b", "uri": "b.jpg", "site": "S2", "annotations": [{"label": "fox"}, {"label": "fox"}]},
    ])
    (tmp_path / "secret.csv").write_text("user,password\nroot,hunter2\n")
    return store


REFUSED = [
    "SELECT * FROM read_csv('{p}')",
    "SELECT * FROM cams, read_csv('{p}')",
    "SELECT c.site FROM cams c JOIN read_csv('{p}') s ON c.site = s.user",
    "SELECT * FROM cams WHERE site IN (SELECT user FROM read_csv('{p}'))",
    "WITH s AS (SELECT * FROM read_csv('{p}')) SELECT * FROM s",
    "SELECT * FROM read_parquet('{p}')",
    "SELECT * FROM read_json('{p}')",
    "SELECT * FROM read_ipc('{p}')",
    "SELECT * FROM read_ndjson('{p}')",
    "SELECT frame_id, read_csv('{p}') FROM cams",
    "SELECT frame_id FROM cams WHERE my_udf(site) = 1",
]


@pytest.mark.parametrize("template", REFUSED)
def test_table_functions_and_unknown_functions_refused(st, tmp_path, template):
    path = str(tmp_path / "secret.csv")
    sql = template.format(p=path)
    with pytest.raises(QueryError, match="not allowed") as err:
        st.sql(sql)
    assert "hunter2" not in str(err.value)
    assert err.value.position is not None and sql[err.value.position:].lower().startswith(
        ("read_", "my_udf")
    )


def test_allowed_functions_still_work(st):
    got = st.sql(
        "SELECT lower(label) AS l, count(*) AS n, max(length(frame_id)) AS m FROM cams__annotations "
        "GROUP BY lower(label) ORDER BY l"
    )
    assert got.to_dicts() == [{"l": "deer", "n": 1, "m": 1}, {"l": "fox", "n": 2, "m": 1}]
    got = st.sql("WITH s AS (SELECT site, coalesce(site, 'none') AS k FROM cams) SELECT k FROM s ORDER BY k")
    assert got["k"].to_list() == ["S1", "S2"]
    got = st.sql("SELECT frame_id FROM cams WHERE site = 'S\\1' OR upper(site) = 'S1'")
    assert got["frame_id"].to_list() == ["a"]
