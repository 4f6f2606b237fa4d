// BullMQ half of bench/queue.sh: the same no-op jobs as `wtt worker --noop`,
// on the same redis-server.
//
//   node bullmq.js drain   REDIS_URL N CONCURRENCY
//   node bullmq.js procs   REDIS_URL N PROCESSES
//   node bullmq.js latency REDIS_URL N CONCURRENCY RATE
//
// drain:   adds N jobs one at a time (each add awaited, as q:enqueue is one
//          call per task), then starts ONE Worker with `concurrency` =
//          CONCURRENCY whose processor returns at once, and waits until all N
//          completed. Throughput = N / (last finish - first start), the same
//          definition bench/queue.sh uses for wtt (finished_at - claimed_at).
// procs:   as drain, but the N jobs are drained by PROCESSES Worker
//          processes with concurrency 1 each: the shape of N `wtt worker`
//          processes (the children run `work`; each reports its first start
//          and last finish when told to stop).
// latency: starts the Worker first, waits until it is idle, then adds N jobs
//          paced at RATE jobs/s; add-to-start latency of each job is
//          job.processedOn - job.timestamp (both Date.now() ms on this host).
//
// Prints one JSON line on stdout. Every run uses a fresh queue name and
// obliterates it afterwards, so runs do not see each other's keys.
"use strict";

const { Queue, Worker } = require("bullmq");

function die(msg) {
    process.stderr.write("bullmq.js: " + msg + "\n");
    process.exit(1);
}

function connection(url) {
    const u = new URL(url);
    const c = {
        host: u.hostname || "127.0.0.1",
        port: Number(u.port || 6379),
        maxRetriesPerRequest: null,     // required by BullMQ workers
    };
    const db = u.pathname.replace(/^\//, "");
    if (db) c.db = Number(db);
    if (u.password) c.password = decodeURIComponent(u.password);
    return c;
}

function pct(sorted, p) {
    if (sorted.length === 0) return 0;
    const i = Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1);
    return sorted[Math.max(0, i)];
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Child of `procs`: one Worker (concurrency 1) on queue NAME until SIGTERM.
async function work(url, name) {
    const conn = connection(url);
    let first = Infinity, last = 0, done = 0;
    const worker = new Worker(name, async () => null, { connection: conn, concurrency: 1 });
    worker.on("completed", (job) => {
        const s = job.processedOn, f = job.finishedOn || Date.now();
        if (s < first) first = s;
        if (f > last) last = f;
        done++;
    });
    worker.on("error", (e) => die("worker error: " + e.message));
    await worker.waitUntilReady();
    process.stdout.write("ready\n");
    process.on("SIGTERM", async () => {
        await worker.close();
        process.stdout.write(JSON.stringify({ first, last, done }) + "\n");
        process.exit(0);
    });
}

// Parent of `procs`: enqueue, start the children, wait for N completions.
async function procs(url, n, nprocs) {
    const { spawn } = require("child_process");
    const conn = connection(url);
    const name = "bench-procs-" + nprocs + "-" + process.pid;
    const queue = new Queue(name, { connection: conn });
    await queue.waitUntilReady();
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) await queue.add("noop", { i });
    const out = { system: "bullmq", version: require("bullmq/package.json").version, mode: "procs", n, processes: nprocs };
    out.enqueue_per_s = Math.round(n / (Number(process.hrtime.bigint() - t0) / 1e9));
    const kids = [];
    for (let k = 0; k < nprocs; k++) {
        const c = spawn(process.execPath, [__filename, "work", url, name], { stdio: ["ignore", "pipe", "inherit"] });
        c.text = "";
        c.stdout.on("data", (d) => { c.text += d; });
        c.exited = new Promise((r) => c.on("exit", r));
        kids.push(c);
    }
    for (;;) {
        const counts = await queue.getJobCounts("completed");
        if (counts.completed >= n) break;
        await sleep(20);
    }
    let first = Infinity, last = 0, done = 0;
    for (const c of kids) {
        c.kill("SIGTERM");
        await c.exited;
        const line = c.text.trim().split("\n").pop();
        const r = JSON.parse(line);
        first = Math.min(first, r.first);
        last = Math.max(last, r.last);
        done += r.done;
    }
    if (done !== n) die("children completed " + done + " of " + n);
    out.tasks_per_s = Math.round(n / ((last - first) / 1000));
    await queue.obliterate({ force: true });
    await queue.close();
    process.stdout.write(JSON.stringify(out) + "\n");
    process.exit(0);
}

async function main() {
    const [mode, url, nArg, concArg, rateArg] = process.argv.slice(2);
    if (mode === "work") return work(url, nArg);
    if (mode === "procs") return procs(url, Number(nArg), Number(concArg));
    if (!mode || !url || !nArg || !concArg) die("usage: bullmq.js drain|latency URL N CONCURRENCY [RATE]");
    const n = Number(nArg), conc = Number(concArg), rate = Number(rateArg || 200);
    const conn = connection(url);
    const name = "bench-" + mode + "-" + conc + "-" + process.pid;
    const queue = new Queue(name, { connection: conn });
    await queue.waitUntilReady();

    const lat = [];
    let firstStart = Infinity, lastFinish = 0, done = 0;
    let resolveAll;
    const allDone = new Promise((r) => { resolveAll = r; });
    let worker = null;

    const startWorker = async () => {
        worker = new Worker(name, async () => null, { connection: conn, concurrency: conc });
        worker.on("completed", (job) => {
            const s = job.processedOn, f = job.finishedOn || Date.now();
            if (s < firstStart) firstStart = s;
            if (f > lastFinish) lastFinish = f;
            lat.push(s - job.timestamp);
            if (++done === n) resolveAll();
        });
        worker.on("error", (e) => die("worker error: " + e.message));
        await worker.waitUntilReady();
    };

    const out = { system: "bullmq", version: require("bullmq/package.json").version, mode, n, concurrency: conc };
    if (mode === "drain") {
        const t0 = process.hrtime.bigint();
        for (let i = 0; i < n; i++) await queue.add("noop", { i });
        const addS = Number(process.hrtime.bigint() - t0) / 1e9;
        out.enqueue_per_s = Math.round(n / addS);
        const w0 = Date.now();
        await startWorker();
        await allDone;
        out.wall_s = (Date.now() - w0) / 1000;
        out.tasks_per_s = Math.round(n / ((lastFinish - firstStart) / 1000));
    } else if (mode === "latency") {
        await startWorker();
        await sleep(300);                       // let the worker block on its wait list
        const t0 = Date.now();
        for (let i = 0; i < n; i++) {
            const due = t0 + (i * 1000) / rate;
            const now = Date.now();
            if (due > now) await sleep(due - now);
            await queue.add("noop", { i });
        }
        await allDone;
        out.rate = rate;
    } else {
        die("unknown mode " + mode);
    }
    lat.sort((a, b) => a - b);
    out.p50_ms = pct(lat, 50);
    out.p99_ms = pct(lat, 99);
    out.max_ms = lat[lat.length - 1];
    await worker.close();
    await queue.obliterate({ force: true });
    await queue.close();
    process.stdout.write(JSON.stringify(out) + "\n");
    process.exit(0);
}

main().catch((e) => die(e.stack || String(e)));
