// Roadlab learner portal: live tasks (Server-Sent Events), Check, Extend, hints, the
// roadmap panel (a Lab started for an Enrollment) and its Start button, the guide's code
// buttons and the terminal (xterm.js over a WebSocket). Plain JavaScript.
(function () {
  "use strict";

  const body = document.body;
  const lab = body.dataset.lab;
  const csrf = body.dataset.csrf;
  const base = "/labs/" + encodeURIComponent(lab);
  const encoder = new TextEncoder();
  const $ = (id) => document.getElementById(id);

  let deadline = null; // Date.now() when the time runs out, from the server's secondsLeft
  let pendingCheck = null;
  let pendingExtension = null;
  let pendingStart = null; // the token of a start request not answered yet
  let roadmap = null; // the latest roadmap panel JSON (a `roadmap` event)
  let terminal = null;
  let socket = null;

  function post(path, payload) {
    return fetch(base + path, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRF-Token": csrf, "Content-Type": "application/json" },
      body: payload === undefined ? "{}" : JSON.stringify(payload),
    }).then((response) =>
      response.json().then((data) => {
        if (!response.ok) throw new Error(data.error || response.statusText);
        return data;
      })
    );
  }

  // --- time left ---------------------------------------------------------------------
  function formatLeft(seconds) {
    const h = Math.floor(seconds / 3600);
    const m = Math.floor((seconds % 3600) / 60);
    const s = seconds % 60;
    const two = (n) => String(n).padStart(2, "0");
    return h > 0 ? h + ":" + two(m) + ":" + two(s) : m + ":" + two(s);
  }

  function tick() {
    const clock = $("time-left");
    if (deadline === null) return;
    const left = Math.max(0, Math.round((deadline - Date.now()) / 1000));
    clock.textContent = left > 0 ? formatLeft(left) : "expired";
    clock.classList.toggle("low", left < 300);
  }

  // --- status ----------------------------------------------------------------------------
  function taskItem(task, shownHints) {
    const item = document.createElement("li");
    item.className = "task state-" + String(task.state).toLowerCase();
    item.dataset.task = task.id;
    const head = document.createElement("div");
    head.className = "task-head";
    const state = document.createElement("span");
    state.className = "task-state";
    state.textContent = task.state;
    const title = document.createElement("span");
    title.className = "task-title";
    title.textContent = task.title;
    const hint = document.createElement("button");
    hint.type = "button";
    hint.className = "hint-button";
    hint.dataset.task = task.id;
    hint.textContent = "Hint";
    head.append(state, title, hint);
    const message = document.createElement("p");
    message.className = "task-message";
    message.textContent = task.message || "";
    const hintText = document.createElement("p");
    hintText.className = "task-hint";
    const shown = shownHints.get(task.id);
    hintText.hidden = shown === undefined;
    hintText.textContent = shown || "";
    item.append(head, message, hintText);
    return item;
  }

  function render(status) {
    const shownHints = new Map();
    document.querySelectorAll("#tasks .task").forEach((item) => {
      const hint = item.querySelector(".task-hint");
      if (!hint.hidden) shownHints.set(item.dataset.task, hint.textContent);
    });
    $("tasks").replaceChildren(...status.tasks.map((task) => taskItem(task, shownHints)));
    const bar = $("progress-bar");
    bar.max = Math.max(1, status.tasksTotal);
    bar.value = status.tasksPassed;
    $("progress-text").textContent = status.tasksPassed + "/" + status.tasksTotal + " tasks";
    if (status.secondsLeft !== null && status.secondsLeft !== undefined) {
      deadline = Date.now() + status.secondsLeft * 1000;
    }
    tick();
    const notice = $("notice");
    notice.hidden = !(status.expired || status.completed);
    notice.classList.toggle("bad", Boolean(status.expired));
    notice.textContent = status.expired
      ? "This lab has expired."
      : status.completed ? "Every task passes: well done!" : "";
    $("check").disabled = Boolean(status.expired) || pendingCheck !== null;
    $("extend").disabled = Boolean(status.expired) || pendingExtension !== null;
    showCheck(status.lastCheck);
    showExtension(status.lastExtension);
  }

  function showCheck(last) {
    const line = $("check-state");
    if (pendingCheck === null) {
      if (last && last.state === "Running") line.textContent = "A check is running…";
      return;
    }
    if (last && last.token === pendingCheck && last.state !== "Running") {
      line.textContent = "Check finished: " + last.state + ".";
      pendingCheck = null;
      $("check").disabled = false;
    } else {
      line.textContent = "Checking…";
    }
  }

  function showExtension(last) {
    if (pendingExtension === null || !last || last.token !== pendingExtension) return;
    $("check-state").textContent =
      (last.state === "Accepted" ? "More time: " : "No more time: ") + last.message;
    pendingExtension = null;
    $("extend").disabled = false;
  }

  // --- the roadmap ---------------------------------------------------------------------------
  function textSpan(className, text) {
    const span = document.createElement("span");
    span.className = className;
    span.textContent = text;
    return span;
  }

  function milestoneItem(milestone) {
    const item = document.createElement("li");
    item.className =
      "milestone ms-" + String(milestone.state).toLowerCase() + (milestone.here ? " here" : "");
    item.dataset.milestone = milestone.id;
    if (milestone.here) item.setAttribute("aria-current", "step");
    const mark = textSpan("milestone-mark", milestone.mark);
    mark.setAttribute("aria-hidden", "true");
    item.append(
      mark,
      textSpan("milestone-title", milestone.title),
      textSpan("milestone-words", milestone.words)
    );
    return item;
  }

  function renderRoadmap(view) {
    if (!$("roadmap")) return;
    roadmap = view;
    $("roadmap-title").textContent = view.title;
    $("roadmap-progress").textContent = view.progressText;
    const problem = $("roadmap-problem");
    problem.textContent = view.problem;
    problem.hidden = !view.problem;
    $("roadmap-milestones").replaceChildren(...view.milestones.map(milestoneItem));
    $("start-next").hidden = !view.canStartNext;
    showStart(view.lastStart);
  }

  function showStart(last) {
    if (pendingStart === null || !last || last.token !== pendingStart) return;
    const line = $("start-state");
    line.replaceChildren(last.text);
    if (last.command) {
      const command = document.createElement("code");
      command.textContent = last.command;
      line.append(" ", command, ".");
    }
    pendingStart = null;
    $("start-next").disabled = false;
  }

  function follow() {
    const events = new EventSource(base + "/events");
    let ended = false;
    events.addEventListener("status", (event) => render(JSON.parse(event.data)));
    events.addEventListener("roadmap", (event) => renderRoadmap(JSON.parse(event.data)));
    // An EventSource gives up for good on an error answer (a 502 while the API server is
    // briefly out of reach): follow again a moment later, unless the lab has ended.
    events.onerror = () => {
      if (ended || events.readyState !== EventSource.CLOSED) return;
      setTimeout(follow, 3000);
    };
    events.addEventListener("ended", (event) => {
      ended = true;
      events.close();
      const notice = $("notice");
      notice.hidden = false;
      notice.classList.add("bad");
      notice.textContent = JSON.parse(event.data).reason;
    });
  }

  // --- buttons -----------------------------------------------------------------------------
  $("check").addEventListener("click", () => {
    $("check").disabled = true;
    $("check-state").textContent = "Asking for a check…";
    post("/check")
      .then((answer) => {
        pendingCheck = answer.token;
        $("check-state").textContent = "Checking…";
      })
      .catch((error) => {
        $("check").disabled = false;
        $("check-state").textContent = "The check could not be asked for: " + error.message;
      });
  });

  $("extend").addEventListener("click", () => {
    $("extend").disabled = true;
    post("/extend", { duration: "30m" })
      .then((answer) => {
        pendingExtension = answer.token;
        $("check-state").textContent = "Asked for 30 more minutes…";
      })
      .catch((error) => {
        $("extend").disabled = false;
        $("check-state").textContent = "More time could not be asked for: " + error.message;
      });
  });

  if ($("start-next")) {
    $("start-next").addEventListener("click", () => {
      $("start-next").disabled = true;
      $("start-state").textContent = "Asking for the next milestone…";
      post("/start")
        .then((answer) => {
          pendingStart = answer.token;
          $("start-state").textContent = "Asked for the next milestone: waiting for the answer…";
          if (roadmap) showStart(roadmap.lastStart); // answered before this reply came
        })
        .catch((error) => {
          $("start-next").disabled = false;
          $("start-state").textContent = "The next milestone could not be asked for: " + error.message;
        });
    });
  }

  $("tasks").addEventListener("click", (event) => {
    const button = event.target.closest(".hint-button");
    if (!button) return;
    const hint = button.closest(".task").querySelector(".task-hint");
    if (!hint.hidden) {
      hint.hidden = true;
      return;
    }
    post("/hint/" + encodeURIComponent(button.dataset.task))
      .then((answer) => {
        hint.textContent = answer.hint || "There is no hint for this task.";
        hint.hidden = false;
      })
      .catch((error) => {
        hint.textContent = "No hint: " + error.message;
        hint.hidden = false;
      });
  });

  // --- the guide's code blocks ---------------------------------------------------------------
  function runInTerminal(text) {
    if (!socket || socket.readyState !== WebSocket.OPEN) return;
    const command = text.replace(/\n+$/, "");
    if (command.includes("\n")) {
      terminal.paste(command); // as a paste: the shell waits for Enter
    } else {
      socket.send(encoder.encode(command + "\r")); // typed, then Enter
    }
    terminal.focus();
  }

  function copy(text, button) {
    const done = () => {
      button.textContent = "copied";
      setTimeout(() => (button.textContent = "copy"), 1500);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done);
      return;
    }
    const area = document.createElement("textarea"); // plain http: the old way
    area.value = text;
    document.body.append(area);
    area.select();
    document.execCommand("copy");
    area.remove();
    done();
  }

  function codeButtons() {
    document.querySelectorAll("#guide pre > code").forEach((code) => {
      const pre = code.parentElement;
      const wrapper = document.createElement("div");
      wrapper.className = "code-block";
      pre.replaceWith(wrapper);
      const tools = document.createElement("div");
      tools.className = "code-tools";
      const copyButton = document.createElement("button");
      copyButton.type = "button";
      copyButton.textContent = "copy";
      copyButton.addEventListener("click", () => copy(code.textContent, copyButton));
      tools.append(copyButton);
      if (window.Terminal) {
        const run = document.createElement("button");
        run.type = "button";
        run.className = "run-button";
        run.textContent = "run in terminal";
        run.addEventListener("click", () => runInTerminal(code.textContent));
        tools.append(run);
      }
      wrapper.append(pre, tools);
    });
  }

  // --- the terminal --------------------------------------------------------------------------
  function openTerminal() {
    const holder = $("terminal");
    if (!window.Terminal || !holder) return;
    terminal = new window.Terminal({
      cursorBlink: true,
      fontSize: 14,
      scrollback: 5000,
      theme: { background: "#11151c" },
    });
    const fit = new window.FitAddon.FitAddon();
    terminal.loadAddon(fit);
    terminal.open(holder);
    fit.fit();
    const resize = () => {
      if (socket && socket.readyState === WebSocket.OPEN) {
        socket.send(JSON.stringify({ resize: [terminal.cols, terminal.rows] }));
      }
    };
    terminal.onResize(resize);
    terminal.onData((data) => {
      if (socket && socket.readyState === WebSocket.OPEN) socket.send(encoder.encode(data));
    });
    new ResizeObserver(() => fit.fit()).observe(holder);
    connect(resize);
  }

  function connect(resize) {
    const state = $("terminal-state");
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const url = scheme + "//" + location.host + base + "/terminal?csrf=" + encodeURIComponent(csrf);
    socket = new WebSocket(url);
    socket.binaryType = "arraybuffer";
    state.textContent = "connecting…";
    socket.onopen = () => {
      state.textContent = "connected";
      resize();
      terminal.focus();
    };
    socket.onmessage = (event) => {
      terminal.write(typeof event.data === "string" ? event.data : new Uint8Array(event.data));
    };
    socket.onclose = () => {
      state.replaceChildren("disconnected · ");
      const again = document.createElement("button");
      again.type = "button";
      again.className = "hint-button";
      again.textContent = "reconnect";
      again.addEventListener("click", () => connect(resize));
      state.append(again);
    };
  }

  const initialLeft = body.dataset.secondsLeft;
  if (initialLeft !== "") deadline = Date.now() + Number(initialLeft) * 1000;
  tick();
  setInterval(tick, 1000);
  codeButtons();
  openTerminal();
  follow();
})();
