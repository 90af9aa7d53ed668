-- GET {LIST_PATH} with a project-scoped token: the image list, first page.
-- LIST_PATH is "/image/v2/images?limit=25" for onestack, "/v2/images?limit=25" for Glance
-- (Glance's baseline list.lua sends "/v2/images", whose default page is also 25).
wrk.method = "GET"
wrk.path = os.getenv("LIST_PATH") or "/v2/images?limit=25"
wrk.headers["X-Auth-Token"] = os.getenv("AUTH_TOKEN")
