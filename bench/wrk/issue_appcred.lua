-- POST {prefix}/v3/auth/tokens with the application_credential method (by id + secret).
-- The token is scoped to the credential's project (no scope in the body, as keystoneauth sends it).
local prefix = os.getenv("PATH_PREFIX") or ""
wrk.method = "POST"
wrk.path = prefix .. "/v3/auth/tokens"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"auth":{"identity":{"methods":["application_credential"],' ..
  '"application_credential":{"id":"' .. os.getenv("APPCRED_ID") .. '",' ..
  '"secret":"' .. os.getenv("APPCRED_SECRET") .. '"}}}}'
