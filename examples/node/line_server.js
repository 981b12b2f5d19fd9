// A line server whose handler waits 30 ms per request, as examples/python/sleepy_server.py:
// `node line_server.js PORTFILE [await|exec|busy|atomics] [SECONDS]`.
//
// `await` awaits a 30 ms setTimeout (the loop serves the others meanwhile); the others block
// the loop for 30 ms: `exec` runs `sleep 0.03` with child_process.execSync (which waits on a
// private libuv loop of its own), `busy` computes, `atomics` waits in Atomics.wait. It listens
// on 127.0.0.1 on a free port, writes the port to PORTFILE, and serves for SECONDS (default 30).
const net = require("net");
const fs = require("fs");
const { execSync } = require("child_process");

const [portFile, mode = "await", seconds = "30"] = process.argv.slice(2);
const shared = new Int32Array(new SharedArrayBuffer(4));

async function wait30() {
  if (mode === "exec") {
    execSync("sleep 0.03");
  } else if (mode === "busy") {
    const until = Date.now() + 30;
    while (Date.now() < until) {}
  } else if (mode === "atomics") {
    Atomics.wait(shared, 0, 0, 30);
  } else {
    await new Promise((resolve) => setTimeout(resolve, 30));
  }
}

const server = net.createServer((socket) => {
  let pending = "";
  let queue = Promise.resolve();
  socket.on("data", (data) => {
    pending += data;
    let end;
    while ((end = pending.indexOf("\n")) >= 0) {
      const line = pending.slice(0, end + 1);
      pending = pending.slice(end + 1);
      queue = queue.then(wait30).then(() => socket.write(line));
    }
  });
  socket.on("error", () => {});
});
server.listen(0, "127.0.0.1", () => {
  fs.writeFileSync(portFile + ".tmp", String(server.address().port));
  fs.renameSync(portFile + ".tmp", portFile);
});
setTimeout(() => process.exit(0), Number(seconds) * 1000);
