// A Node.js program that blocks its event loop: `node blocked_loop.js [SECONDS]`.
// A setInterval callback busy-loops for 150 ms and reads a file with readFileSync every
// 200 ms; timers and I/O callbacks behind it wait.
const fs = require("fs");
const seconds = Number(process.argv[2] || 2);
const started = Date.now();
const timer = setInterval(() => {
  const until = Date.now() + 150;
  let total = 0;
  while (Date.now() < until) {
    total = (total * 31 + 7) % 1000003;
  }
  fs.readFileSync(process.argv[1]);
  if (Date.now() - started > seconds * 1000) {
    clearInterval(timer);
    console.log("blocked_loop: done");
  }
}, 200);
