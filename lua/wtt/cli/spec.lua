-- `wtt spec [busted args]`: busted inside the embedded runtime, so specs
-- use the real C modules exactly as routes do (Kong's bin/busted, under
-- resty, does the same). Busted reads the global `arg`.
require "busted.runner" ({ standalone = false })
