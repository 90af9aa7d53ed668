-- POST {prefix}/v3/auth/tokens with the token method: an existing token (AUTH_TOKEN) is
-- exchanged for a new project-scoped one (catalog included), as keystoneauth re-scopes.
local prefix = os.getenv("PATH_PREFIX") or ""
wrk.method = "POST"
wrk.path = prefix .. "/v3/auth/tokens"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"auth":{"identity":{"methods":["token"],"token":{"id":"' .. os.getenv("AUTH_TOKEN") .. '"}},' ..
  '"scope":{"project":{"name":"admin","domain":{"id":"default"}}}}}'
