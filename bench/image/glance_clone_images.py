#!/usr/bin/env python3
"""Fill Glance's SQLite database with N more images, as rows copied from one image that was
created through the API (same columns and properties; new id, name and timestamps one
millisecond apart), so that GET /v2/images can be measured with a large store without
waiting ~15 min for 10,000 POSTs through Glance (≈ 4-10 creates/s on this machine).
Run with glance-api stopped.

usage: glance_clone_images.py GLANCE_DB TEMPLATE_IMAGE_ID N   -> prints "cloned=N visible=M"
"""
import datetime
import sqlite3
import sys
import uuid


def main():
    db, template, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    con = sqlite3.connect(db)
    con.row_factory = sqlite3.Row
    cols = [r[1] for r in con.execute("PRAGMA table_info(images)")]
    row = con.execute("SELECT * FROM images WHERE id = ?", (template,)).fetchone()
    if row is None:
        sys.exit(f"no image {template} in {db}")
    pcols = [r[1] for r in con.execute("PRAGMA table_info(image_properties)") if r[1] != "id"]
    props = con.execute(f"SELECT {', '.join(pcols)} FROM image_properties WHERE image_id = ? AND deleted = 0",
                        (template,)).fetchall()
    base = datetime.datetime.utcnow()
    rows, prows = [], []
    for i in range(n):
        rec = dict(row)
        rec["id"] = str(uuid.uuid4())
        rec["name"] = f"list-{i:05d}"
        ts = (base + datetime.timedelta(milliseconds=i)).strftime("%Y-%m-%d %H:%M:%S.%f")
        rec["created_at"] = rec["updated_at"] = ts
        rows.append([rec[c] for c in cols])
        for p in props:
            pr = dict(p)
            pr["image_id"] = rec["id"]
            prows.append([pr[c] for c in pcols])
    with con:
        con.executemany(f"INSERT INTO images ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})", rows)
        if prows:
            con.executemany(f"INSERT INTO image_properties ({', '.join(pcols)}) "
                            f"VALUES ({', '.join('?' * len(pcols))})", prows)
    visible = con.execute("SELECT count(*) FROM images WHERE deleted = 0").fetchone()[0]
    print(f"cloned={n} visible={visible}")


if __name__ == "__main__":
    main()
