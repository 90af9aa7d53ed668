-- POST {prefix}/v3/auth/tokens: password auth, project-scoped, catalog included (the default).
-- Same body as baseline/keystone/wrk/issue.lua; PATH_PREFIX is "/identity" for onestack, "" for Keystone.
local prefix = os.getenv("PATH_PREFIX") or ""
local password = os.getenv("ADMIN_PASSWORD") or "baseline-admin-pw"
wrk.method = "POST"
wrk.path = prefix .. "/v3/auth/tokens"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"auth":{"identity":{"methods":["password"],"password":{"user":' ..
  '{"name":"admin","domain":{"id":"default"},"password":"' .. password .. '"}}},' ..
  '"scope":{"project":{"name":"admin","domain":{"id":"default"}}}}}'
