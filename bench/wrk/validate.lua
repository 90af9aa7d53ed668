-- GET {prefix}/v3/auth/tokens: a service token (X-Auth-Token) validates a user token
-- (X-Subject-Token), as keystonemiddleware does for every API call it has not cached.
-- Same as baseline/keystone/wrk/validate.lua; PATH_PREFIX is "/identity" for onestack.
local prefix = os.getenv("PATH_PREFIX") or ""
wrk.method = "GET"
wrk.path = prefix .. "/v3/auth/tokens"
wrk.headers["X-Auth-Token"] = os.getenv("AUTH_TOKEN")
wrk.headers["X-Subject-Token"] = os.getenv("SUBJECT_TOKEN")
