-- The example route of docs/routes.md: captures, query and JSON bodies.
-- An example, not a product route: copy it into routes/ to serve it.

local http = require "wtt.http"

local GREETING = "hello"


local function hello(req)
    local name = req.params.name or "world"
    local greeting = req.query.greeting or GREETING
    return 200, { message = greeting .. ", " .. name }
end


local function echo(req)
    local doc = req:json()
    if type(doc) ~= "table" or type(doc.name) ~= "string" then
        http.abort(422, "invalid", "expected {\"name\": string}")
    end
    return 201, { message = GREETING .. ", " .. doc.name }
end


return {
    { "GET", "/hello/", hello },
    { "GET", "/hello/:name/", hello },
    { "POST", "/hello/", echo, { body = "raw" } },
}
