-- The media retention sweep (wtt.service.media_sweep, docs/operations.md
-- "Media retention") on a real PostgreSQL (migrated) with each media
-- store, dir and pg: rows in every state and of various ages, their files,
-- orphans old and young, a crash's temp files and a stray large object.
-- After a pass exactly the right rows and files remain; a file younger
-- than the grace period that no row names yet (an upload being written)
-- is never removed; a pass removes at most its batch.

local pgh = require "spec.support.pg"
local pg = require "wtt.pg"
local sys = require "wtt.sys"
local runtime = require "wtt.runtime"
local migrate = require "wtt.migrate"
local media = require "wtt.service.media"
local sweep = require "wtt.service.media_sweep"

local DAY = 86400
local OPTS = { completed_s = 30 * DAY, failed_s = 7 * DAY, unused_s = DAY,
               grace_s = 3600, batch = 500 }


describe("media retention sweep #pg", function()
    local pgsrv, db, tmp

    setup(function()
        pgsrv = pgh.start()
        db = assert(pg.connect(pgsrv.url))
        assert(migrate.run(db, { dir = runtime.source_dir
                                       .. "/lua/migrations" }))
        tmp = assert(sys.mkdtemp("wtt-media-sweep-"))
    end)
    teardown(function()
        if db then db:close() end
        if pgsrv then pgsrv:stop() end
        if tmp then sys.rmtree(tmp) end
    end)

    local n_store = 0
    local function new_store(kind)
        n_store = n_store + 1
        if kind == "dir" then
            return media.new_store("dir", { dir = tmp .. "/dir" .. n_store })
        end
        return media.new_store("pg", { db = function() return db end,
                                       cache_dir = tmp .. "/cache" .. n_store })
    end

    for _, kind in ipairs({ "dir", "pg" }) do
        describe(kind .. " store", function()
            local store

            before_each(function()
                assert(db:exec("DELETE FROM audio_midi"))
                assert(db:query("SELECT lo_unlink(oid) FROM "
                                .. "pg_largeobject_metadata"))
                assert(db:exec("DELETE FROM media_objects"))
                store = new_store(kind)
            end)

            -- Puts a file and dates it `age_s` back.
            local function file(ext, age_s)
                local name = media.new_name(ext)
                assert(store:put(name, "bytes of " .. name))
                if kind == "dir" then
                    local t = os.time() - math.floor(age_s)
                    assert(os.execute(("touch -m -d @%d '%s'")
                                      :format(t, store:path(name))))
                else
                    assert(db:exec("UPDATE media_objects SET created_at = "
                        .. "now() - make_interval(secs => $2) "
                        .. "WHERE name = $1", name, age_s))
                end
                return name
            end

            -- A row in `status`, last updated `age_s` ago, with its files.
            -- @return the row's id and its file names
            local function row(status, age_s, with_task)
                local names = { file("wav", age_s) }
                local cols = { audio = names[1] }
                if status == "completed" then
                    cols.midi, cols.notes, cols.post = file("mid", age_s),
                        file("json", age_s), file("npy", age_s)
                    names[2], names[3], names[4] = cols.midi, cols.notes,
                                                   cols.post
                end
                local task = with_task and media.random_hex(16) or pg.null
                local rows = assert(db:query("INSERT INTO audio_midi "
                    .. "(audio_path, midi_path, notes_path, posteriors_path, "
                    .. "status, task_id, created_at, updated_at) VALUES ($1, "
                    .. "$2, $3, $4, $5, $6, now() - make_interval(secs => $7),"
                    .. " now() - make_interval(secs => $7)) RETURNING id",
                    cols.audio, cols.midi or pg.null, cols.notes or pg.null,
                    cols.post or pg.null, status, task, age_s))
                return rows[1].id, names
            end

            local function stored()
                local out = {}
                if kind == "dir" then
                    for _, n in ipairs(sys.listdir(store.root) or {}) do
                        out[#out + 1] = n
                    end
                else
                    for _, r in ipairs(assert(db:query(
                            "SELECT name FROM media_objects"))) do
                        out[#out + 1] = r.name
                    end
                end
                table.sort(out)
                return out
            end

            local function row_ids()
                local out = {}
                for _, r in ipairs(assert(db:query(
                        "SELECT id FROM audio_midi"))) do
                    out[#out + 1] = r.id
                end
                table.sort(out)
                return out
            end

            it("removes expired rows, their files and old orphans; keeps"
               .. " the rest, a young unnamed file included", function()
                local keep_files, keep_rows = {}, {}
                local function keep(id, names)
                    keep_rows[#keep_rows + 1] = id
                    for _, n in ipairs(names) do
                        keep_files[#keep_files + 1] = n
                    end
                end
                row("completed", 40 * DAY)                 -- expired
                keep(row("completed", 1 * DAY))
                row("failed", 8 * DAY)                     -- expired
                keep(row("failed", 1 * DAY))
                row("pending", 2 * DAY)                    -- never generated
                keep(row("pending", 3600))
                keep(row("pending", 100 * DAY, true))      -- queued: kept
                keep(row("processing", 100 * DAY, true))
                file("mid", 2 * DAY)                       -- orphan: removed
                file("wav", 2 * DAY)
                -- An upload being written: no row yet, younger than grace.
                keep_files[#keep_files + 1] = file("wav", 10)
                local stray_part, young_part
                if kind == "dir" then
                    -- A crash's temp files: an old one goes.
                    stray_part = store:path(media.new_name("mid"))
                                 .. ".part0123456789abcdef"
                    young_part = store:path(media.new_name("wav"))
                                 .. ".partfedcba9876543210"
                    assert(sys.write_file(stray_part, "half"))
                    assert(os.execute(("touch -m -d @%d '%s'")
                                      :format(os.time() - 2 * DAY,
                                              stray_part)))
                    assert(sys.write_file(young_part, "half"))
                    keep_files[#keep_files + 1] = young_part:match("[^/]+$")
                else
                    -- A large object no row names.
                    assert(db:query("SELECT lo_from_bytea(0, 'stray')"))
                end
                table.sort(keep_files)
                table.sort(keep_rows)

                local stats = assert(sweep.run(db, store, OPTS))
                assert.equal(3, stats.rows)
                assert.equal(4 + 1 + 1, stats.files)
                assert.equal(kind == "dir" and 3 or 2, stats.orphans)
                assert.equal(kind == "pg" and 1 or 0, stats.objects)
                assert.same(keep_files, stored())
                assert.same(keep_rows, row_ids())
                if kind == "pg" then
                    local n = assert(db:query("SELECT (SELECT count(*) FROM "
                        .. "pg_largeobject_metadata) - (SELECT count(*) FROM "
                        .. "media_objects) AS d"))[1].d
                    assert.equal(0, tonumber(n))
                end

                -- A second pass finds nothing more.
                stats = assert(sweep.run(db, store, OPTS))
                assert.same({ rows = 0, files = 0, orphans = 0,
                              objects = 0 }, stats)
                assert.same(keep_files, stored())
            end)

            it("removes at most its batch per pass", function()
                for _ = 1, 5 do
                    file("mid", 2 * DAY)
                end
                local opts = {}
                for k, v in pairs(OPTS) do
                    opts[k] = v
                end
                opts.batch = 2
                local seen = {}
                for _ = 1, 4 do
                    local stats = assert(sweep.run(db, store, opts))
                    seen[#seen + 1] = stats.orphans
                end
                assert.same({ 2, 2, 1, 0 }, seen)
                assert.same({}, stored())
            end)

            it("keeps everything while the retention settings are 0",
               function()
                row("completed", 400 * DAY)
                row("failed", 400 * DAY)
                row("pending", 400 * DAY)
                local before = stored()
                local stats = assert(sweep.run(db, store, {
                    completed_s = 0, failed_s = 0, unused_s = 0,
                    grace_s = OPTS.grace_s, batch = 500 }))
                assert.equal(0, stats.rows)
                assert.same(before, stored())
                assert.equal(3, #row_ids())
            end)
        end)
    end
end)


-- The sweep as `wtt serve` runs it: its subscriber thread, every
-- WTT_MEDIA_SWEEP_INTERVAL_S.
describe("media retention sweep in wtt serve #redis #pg", function()
    local S = require "spec.support.service"
    local e

    setup(function()
        e = S.start({ subscriber = true, serve_env = {
            WTT_MEDIA_SWEEP_INTERVAL_S = "0.3", WTT_MEDIA_GRACE_S = "600",
            WTT_RETAIN_UNUSED_S = "600" } })
    end)
    teardown(function()
        if e then e:stop() end
    end)

    it("removes an old orphan and an expired upload, keeps a fresh upload",
       function()
        local orphan = e.media .. "/" .. media.new_name("mid")
        assert(sys.write_file(orphan, "orphan"))
        assert(os.execute(("touch -m -d @%d '%s'")
                          :format(os.time() - DAY, orphan)))
        local old = e:upload(S.wav(0.5))
        assert.equal(201, old.status, old.body)
        local old_path = e:row(old.json.audio_midi_id).audio_path
        -- Backdate the row past WTT_RETAIN_UNUSED_S (the trigger sets
        -- updated_at on UPDATE, so a second statement sets it by hand).
        assert(e.db:exec("ALTER TABLE audio_midi DISABLE TRIGGER "
                         .. "audio_midi_touch_updated_at"))
        assert(e.db:exec("UPDATE audio_midi SET updated_at = now() - "
                         .. "interval '1 day' WHERE id = $1",
                         old.json.audio_midi_id))
        assert(e.db:exec("ALTER TABLE audio_midi ENABLE TRIGGER "
                         .. "audio_midi_touch_updated_at"))
        local fresh = e:upload(S.wav(0.5))
        assert.equal(201, fresh.status, fresh.body)
        local fresh_path = e:row(fresh.json.audio_midi_id).audio_path

        assert(S.eventually(function()
            return not sys.exists(orphan)
                   and not sys.exists(e.media .. "/" .. old_path)
        end, 10, 0.05), "the sweep did not run: orphan "
                        .. tostring(sys.exists(orphan)) .. ", upload "
                        .. tostring(sys.exists(e.media .. "/" .. old_path)))
        assert.equal(0, #assert(e.db:query("SELECT 1 FROM audio_midi WHERE "
                                           .. "id = $1", old.json.audio_midi_id)))
        assert.equal("file", sys.exists(e.media .. "/" .. fresh_path))
        assert.equal(1, #assert(e.db:query("SELECT 1 FROM audio_midi WHERE "
                                           .. "id = $1", fresh.json.audio_midi_id)))
    end)
end)
