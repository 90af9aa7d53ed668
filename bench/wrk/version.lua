-- GET {prefix}/v3: the unauthenticated version document (framework + HTTP server floor).
-- Same as baseline/keystone/wrk/version.lua; PATH_PREFIX is "/identity" for onestack.
local prefix = os.getenv("PATH_PREFIX") or ""
wrk.method = "GET"
wrk.path = prefix .. "/v3"
