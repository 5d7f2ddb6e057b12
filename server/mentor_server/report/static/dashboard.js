// The reward dashboard's page script: draws what mentor_server.report.summary computed.
// Every number comes aggregated from the server side; this script only lays it out, so a
// large run costs the browser no more than a small one. Model text is shown with
// textContent only: a rollout can hold any markup, and none of it may run here.
//
// The data is either inside the page (the report file, and /ui on a service without keys) or,
// on a service with API keys, fetched from the page's data route with the key the user gives:
// see the end of this file.
"use strict";
(function () {
  let started = performance.now();
  let data = null;
  let runs = [];
  const palette = ["#2f6fde", "#e07b39", "#3a9d5d", "#c23b3b", "#8a5cc2", "#b08a1e", "#1f9bb4", "#d04f9a", "#6b7a90", "#5aa02c"];
  const charts = {};
  Chart.defaults.animation = false;
  Chart.defaults.maintainAspectRatio = false;
  Chart.defaults.font.size = 11;

  function $(id) { return document.getElementById(id); }
  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }
  function fmt(value, digits) {
    if (value === null || value === undefined) return "–";
    if (typeof value !== "number") return String(value);
    return value.toFixed(digits === undefined ? 3 : digits);
  }
  function pct(value) { return value === null || value === undefined ? "–" : (100 * value).toFixed(1) + "%"; }
  function runLabel(run) { return run.run_id === null ? "(no run id)" : run.run_id; }
  function color(i) { return palette[i % palette.length]; }
  function points(xs, ys) { return xs.map(function (x, i) { return { x: x, y: ys[i] }; }); }
  function json(value) { return JSON.stringify(value, null, 2); }

  function draw(id, config) {
    if (charts[id]) charts[id].destroy();
    const canvas = $(id);
    const box = canvas.parentElement;
    const old = box.querySelector(".empty");
    if (old) old.remove();
    canvas.hidden = false;
    charts[id] = new Chart(canvas, config);
  }
  function blank(id, message) {
    if (charts[id]) { charts[id].destroy(); delete charts[id]; }
    const canvas = $(id);
    canvas.hidden = true;
    const box = canvas.parentElement;
    const old = box.querySelector(".empty");
    if (old) old.remove();
    box.appendChild(el("div", "empty", message));
  }
  function stepScale(title) {
    return { type: "linear", title: { display: true, text: title || "step" }, ticks: { precision: 0 } };
  }

  // ------------------------------------------------------------------ header and overview
  function stat(label, value) {
    const box = el("div", "stat");
    box.appendChild(el("b", null, value));
    box.appendChild(el("span", null, label));
    return box;
  }
  function overview() {
    const box = $("overview");
    box.replaceChildren();
    const scored = runs.reduce(function (a, r) { return a + r.n_scored; }, 0);
    const errors = runs.reduce(function (a, r) { return a + r.n_errors; }, 0);
    box.appendChild(stat("records", data.n_records.toLocaleString()));
    box.appendChild(stat("runs", runs.length));
    box.appendChild(stat("scored", scored.toLocaleString()));
    box.appendChild(stat("errors (no reward)", errors.toLocaleString()));
  }

  function rewardOverRuns() {
    const stepped = runs.filter(function (r) { return r.steps.length > 0; });
    if (stepped.length === 0) { blank("chart-reward", "No record carries a step number."); return; }
    draw("chart-reward", {
      type: "line",
      data: {
        datasets: stepped.map(function (run, i) {
          return { label: runLabel(run), data: points(run.steps, run.series.reward_mean), borderColor: color(i),
            backgroundColor: color(i), pointRadius: run.steps.length > 60 ? 0 : 2, borderWidth: 2 };
        }),
      },
      options: { scales: { x: stepScale(), y: { title: { display: true, text: "mean reward" } } },
        plugins: { legend: { display: stepped.length > 1 } } },
    });
  }

  // ------------------------------------------------------------------ one run
  function runStats(run) {
    const box = $("run-stats");
    box.replaceChildren();
    box.appendChild(stat("records", run.n_records.toLocaleString()));
    box.appendChild(stat("mean reward", fmt(run.reward_mean)));
    box.appendChild(stat("steps", run.steps.length));
    box.appendChild(stat("tool-call rate", pct(run.tool_call_rate)));
    box.appendChild(stat("invalid-tool rate", pct(run.invalid_tool_rate)));
    box.appendChild(stat("errors", run.n_errors));
    const presets = Object.keys(run.presets).map(function (p) { return p + " (" + run.presets[p] + ")"; }).join(", ");
    const hashes = Object.keys(run.spec_hashes).join(", ");
    const notes = ["preset: " + presets, "spec hash: " + hashes];
    if (run.n_unread) notes.push(run.n_unread + " scored records whose rollout could not be read again: left out of the tool charts");
    if (run.n_unstepped) notes.push(run.n_unstepped + " records carry no step: counted above, not in the step charts");
    const errorTypes = Object.keys(run.error_types);
    if (errorTypes.length) notes.push("errors: " + errorTypes.map(function (t) { return t + " × " + run.error_types[t]; }).join(", "));
    $("run-notes").textContent = notes.join(" · ");
  }

  function componentsChart(run) {
    const names = Object.keys(run.components);
    if (run.steps.length === 0 || names.length === 0) { blank("chart-components", "No component scores over steps in this run."); return; }
    draw("chart-components", {
      type: "line",
      data: {
        datasets: [{ label: "reward", data: points(run.steps, run.series.reward_mean), borderColor: "#1d2330",
          backgroundColor: "#1d2330", borderWidth: 3, pointRadius: 0, yAxisID: "reward" }].concat(
          names.map(function (name, i) {
            return { label: name, data: points(run.steps, run.components[name]), borderColor: color(i + 1),
              backgroundColor: color(i + 1), pointRadius: 0, borderWidth: 1.5, yAxisID: "y" };
          })),
      },
      options: { scales: { x: stepScale(), y: { min: 0, max: 1, title: { display: true, text: "component mean" } },
        reward: { type: "linear", position: "right", title: { display: true, text: "reward" }, grid: { drawOnChartArea: false } } } },
    });
  }

  function distributionChart(run) {
    if (run.steps.length === 0) { blank("chart-distribution", "No record carries a step number."); return; }
    const q = run.quantiles;
    const band = function (label, values, fill, shade) {
      return { label: label, data: points(run.steps, values), borderColor: "rgba(47,111,222,0.35)", borderWidth: 1,
        pointRadius: 0, fill: fill, backgroundColor: shade };
    };
    draw("chart-distribution", {
      type: "line",
      data: { datasets: [
        band("p10", q.p10, false, "transparent"),
        band("p90", q.p90, "-1", "rgba(47,111,222,0.12)"),
        band("p25", q.p25, false, "transparent"),
        band("p75", q.p75, "-1", "rgba(47,111,222,0.28)"),
        { label: "median", data: points(run.steps, q.p50), borderColor: "#2f6fde", borderWidth: 2, pointRadius: 0, fill: false },
      ] },
      // The bands' edges need no legend entries: the note under the chart says what they are.
      options: { scales: { x: stepScale(), y: { title: { display: true, text: "reward" } } },
        plugins: { legend: { labels: { filter: function (item) { return item.text === "median"; } } } } },
    });
  }

  function histogramChart(run) {
    const slider = $("hist-step");
    const all = $("hist-all");
    const labels = [];
    for (let i = 0; i + 1 < run.histogram_edges.length; i++) labels.push(fmt(run.histogram_edges[i], 2));
    slider.min = 0;
    slider.max = Math.max(0, run.steps.length - 1);
    slider.value = slider.max;
    slider.disabled = run.steps.length === 0;
    all.checked = run.steps.length === 0;
    const update = function () {
      const whole = all.checked || run.steps.length === 0;
      const index = Number(slider.value);
      const counts = whole ? run.histogram_all : run.series.histogram[index];
      $("hist-label").textContent = whole ? "all steps" : "step " + run.steps[index] + " (" + run.series.n[index] + " records)";
      const current = charts["chart-histogram"];
      if (current && current.$run === run) {  // same bins: only the counts change
        current.data.datasets[0].data = counts;
        current.update();
        return;
      }
      draw("chart-histogram", {
        type: "bar",
        data: { labels: labels, datasets: [{ label: "rollouts", data: counts, backgroundColor: "#2f6fde" }] },
        options: { scales: { x: { title: { display: true, text: "reward (bin start)" } },
          y: { title: { display: true, text: "rollouts" }, ticks: { precision: 0 } } }, plugins: { legend: { display: false } } },
      });
      charts["chart-histogram"].$run = run;
    };
    slider.oninput = update;
    all.onchange = update;
    update();
  }

  function toolChart(run) {
    if (run.steps.length === 0) { blank("chart-tools", "No record carries a step number."); return; }
    const s = run.series;
    draw("chart-tools", {
      type: "line",
      data: { datasets: [
        { label: "tool-call rate", data: points(run.steps, s.tool_call_rate), borderColor: color(0), backgroundColor: color(0), pointRadius: 0, yAxisID: "y" },
        { label: "invalid-tool rate", data: points(run.steps, s.invalid_tool_rate), borderColor: color(3), backgroundColor: color(3), pointRadius: 0, yAxisID: "y" },
        { label: "calls per rollout", data: points(run.steps, s.calls_per_rollout), borderColor: color(2), backgroundColor: color(2), pointRadius: 0, borderDash: [4, 3], yAxisID: "calls" },
      ] },
      options: { scales: { x: stepScale(), y: { min: 0, max: 1, title: { display: true, text: "share" } },
        calls: { type: "linear", position: "right", min: 0, title: { display: true, text: "calls" }, grid: { drawOnChartArea: false } } } },
    });
    const checked = run.n_checked === run.n_scored ? "every scored record" : run.n_checked + " of " + run.n_scored + " scored records";
    $("tools-note").textContent = "Invalid-tool rate over " + checked + " (those whose toolset is known: the preset's" +
      (data.toolset_override ? ", here " + data.toolset_override : "") + ").";
  }

  function inventedChart(run) {
    if (run.n_checked === 0) { blank("chart-invented", "The toolset of these records is unknown (an inline spec, or a preset not known here): invented names cannot be told. `mentor-reward report --toolset NAME` names it."); return; }
    if (run.invented_tools.length === 0) { blank("chart-invented", "No invented tool names in this run."); return; }
    draw("chart-invented", {
      type: "bar",
      data: { labels: run.invented_tools.map(function (p) { return p[0]; }),
        datasets: [{ label: "calls", data: run.invented_tools.map(function (p) { return p[1]; }), backgroundColor: "#c23b3b" }] },
      options: { indexAxis: "y", plugins: { legend: { display: false } }, scales: { x: { ticks: { precision: 0 }, title: { display: true, text: "calls" } } } },
    });
  }

  function usageChart(run) {
    const u = run.tool_usage;
    if (u.names.length === 0) { blank("chart-usage", "Neither the rollouts nor the teacher traces call a tool."); return; }
    draw("chart-usage", {
      type: "bar",
      data: { labels: u.names, datasets: [
        { label: "teacher (calls per trace)", data: u.teacher, backgroundColor: "#6b7a90" },
        { label: "student (calls per rollout)", data: u.student, backgroundColor: "#2f6fde" },
      ] },
      options: { scales: { y: { min: 0, title: { display: true, text: "calls per item" } } } },
    });
    $("usage-note").textContent = u.n_references + " of " + run.n_scored + " scored records carry a teacher trace.";
  }

  // ------------------------------------------------------------------ samples
  function sampleFlags(s) {
    const tags = [];
    if (s.error) tags.push(["error", true]);
    if (s.invented && s.invented.length) tags.push(["invented", true]);
    if (s.completion_clipped) tags.push(["cut", false]);
    return tags;
  }
  function filterSamples(run) {
    const mode = $("sample-filter").value;
    let list = data.samples.filter(function (s) { return s.run_id === run.run_id; });
    if (mode === "errors") list = list.filter(function (s) { return s.error; });
    if (mode === "invented") list = list.filter(function (s) { return s.invented && s.invented.length; });
    if (mode === "low" || mode === "high") {
      list = list.filter(function (s) { return typeof s.reward === "number"; });
      list.sort(function (a, b) { return mode === "low" ? a.reward - b.reward : b.reward - a.reward; });
    }
    return list;
  }
  function samplesTable(run) {
    const body = $("sample-rows");
    body.replaceChildren();
    const list = filterSamples(run);
    $("sample-count").textContent = list.length + " shown";
    list.forEach(function (s, i) {
      const row = el("tr", "pick");
      row.appendChild(el("td", null, s.step === null ? "–" : s.step));
      row.appendChild(el("td", s.error ? "error" : null, s.error ? "error" : fmt(s.reward)));
      const flags = el("td");
      sampleFlags(s).forEach(function (t) { flags.appendChild(el("span", t[1] ? "tag bad" : "tag", t[0])); });
      row.appendChild(flags);
      row.onclick = function () {
        body.querySelectorAll("tr.chosen").forEach(function (r) { r.classList.remove("chosen"); });
        row.classList.add("chosen");
        showSample(s);
      };
      body.appendChild(row);
      if (i === 0) row.onclick();
    });
    if (list.length === 0) { $("sample-detail").replaceChildren(el("div", "empty", "No sampled rollout matches.")); }
  }
  function messagesText(completion) {
    if (typeof completion === "string") return completion;
    if (!Array.isArray(completion)) return json(completion);
    return completion.map(function (m) {
      if (!m || typeof m !== "object") return json(m);
      let text = "[" + (m.role || "?") + "] " + (typeof m.content === "string" ? m.content : json(m.content));
      if (m.tool_calls) text += "\n" + json(m.tool_calls);
      return text;
    }).join("\n\n");
  }
  function section(parent, title, text, className) {
    parent.appendChild(el("h3", null, title));
    parent.appendChild(el("pre", className, text));
  }
  function showSample(s) {
    const detail = $("sample-detail");
    detail.replaceChildren();
    const head = el("p", "note", "run " + (s.run_id === null ? "(none)" : s.run_id) + " · step " + (s.step === null ? "–" : s.step) +
      " · preset " + (s.preset || "(inline spec)") + " · spec " + s.spec_hash + " · reward " + fmt(s.reward));
    detail.appendChild(head);
    const pair = el("div", "pair");
    const student = el("div");
    const teacher = el("div");
    student.appendChild(el("h2", null, "Student rollout"));
    section(student, "Completion" + (s.completion_clipped ? " (cut at " + data.completion_chars + " characters)" : ""), messagesText(s.completion));
    if (s.student_calls) {
      section(student, "Tool calls read by the reward's parser", s.student_calls.length ? s.student_calls.map(function (c) {
        return (c.name || "(no name)") + " " + json(c.arguments) + (c.error ? "   ← " + c.error : "");
      }).join("\n") : "(none)");
    }
    if (s.invented && s.invented.length) section(student, "Invented tool names", s.invented.join(", "), "error");
    if (s.error) section(student, "Error", json(s.error), "error");
    const table = el("table");
    Object.keys(s.components).forEach(function (name) {
      const row = el("tr");
      row.appendChild(el("td", null, name));
      row.appendChild(el("td", null, fmt(s.components[name])));
      table.appendChild(row);
    });
    student.appendChild(el("h3", null, "Components"));
    student.appendChild(table);
    section(student, "Reason", s.reason || "(none)");
    teacher.appendChild(el("h2", null, "Teacher trace"));
    const ref = s.reference;
    if (ref && typeof ref === "object" && Array.isArray(ref.calls)) {
      section(teacher, "Calls", ref.calls.length ? ref.calls.map(function (c) {
        if (!c || typeof c !== "object") return json(c);
        return c.name + " " + json(c.arguments || {}) + (c.result !== undefined && c.result !== null ? "\n   → " + json(c.result) : "");
      }).join("\n") : "(no calls)");
      if (ref.answer !== undefined && ref.answer !== null) section(teacher, "Answer", String(ref.answer));
    } else if (Array.isArray(s.teacher_tools)) {
      section(teacher, "Tools used (names only)", s.teacher_tools.length ? s.teacher_tools.join(", ") : "(none)");
    } else {
      teacher.appendChild(el("p", "note", "This item carries no teacher trace."));
    }
    section(teacher, "Ground truth", s.ground_truth === undefined || s.ground_truth === null ? "(none)" :
      (typeof s.ground_truth === "string" ? s.ground_truth : json(s.ground_truth)));
    pair.appendChild(student);
    pair.appendChild(teacher);
    detail.appendChild(pair);
  }

  // ------------------------------------------------------------------ wiring
  function showRun(index) {
    const run = runs[index];
    runStats(run);
    componentsChart(run);
    distributionChart(run);
    histogramChart(run);
    toolChart(run);
    inventedChart(run);
    usageChart(run);
    $("sample-filter").onchange = function () { samplesTable(run); };
    samplesTable(run);
  }

  function render(summary) {
    started = performance.now();
    data = summary;
    runs = data.runs;
    document.querySelectorAll("main > .card").forEach(function (node) {
      node.hidden = node.classList.contains("per-run") && runs.length === 0;
    });
    $("key-prompt").hidden = true;
    $("load-status").hidden = true;
    overview();
    if (runs.length === 0) {
      blank("chart-reward", "No score records yet: score with recording on (record_backend), then reload.");
    } else {
      const picker = $("run");
      runs.forEach(function (run, i) {
        const option = el("option", null, runLabel(run) + " (" + run.n_records + (run.n_records === 1 ? " record)" : " records)"));
        option.value = String(i);
        picker.appendChild(option);
      });
      picker.onchange = function () { showRun(Number(picker.value)); };
      rewardOverRuns();
      showRun(0);
    }
    // For tests and benchmarks: the page is drawn, how long it took from navigation, and how much
    // of that was this script (reading the data and drawing the charts).
    document.body.dataset.renderMs = String(Math.round(performance.now()));
    document.body.dataset.drawMs = String(Math.round(performance.now() - started));
    document.body.dataset.ready = "1";
  }

  const embedded = JSON.parse($("dashboard-data").textContent);
  if (embedded !== null) {
    render(embedded);
    return;
  }

  // ------------------------------------------------------------------ a service with API keys
  // The service sent this page without data because the browser's navigation carried no key.
  // The key the user types is kept in this tab's sessionStorage (never in the URL, never
  // logged) and sent only as a bearer header to the data route, which checks it as every
  // guarded route does. A refused key is forgotten and asked for again.
  const KEY_SLOT = "mentor-reward-api-key";
  const dataUrl = document.body.dataset.load;
  let pageKey = null;  // where the key lives when the browser refuses sessionStorage
  function readKey() {
    try { return sessionStorage.getItem(KEY_SLOT); } catch (e) { return pageKey; }
  }
  function keepKey(key) {
    pageKey = key;
    try {
      if (key === null) sessionStorage.removeItem(KEY_SLOT); else sessionStorage.setItem(KEY_SLOT, key);
    } catch (e) { /* storage refused: the key lives as long as the page */ }
  }
  function status(text, bad) {
    const box = $("load-status");
    box.textContent = text;
    box.classList.toggle("error", Boolean(bad));
    box.hidden = false;
  }
  function ask(message) {
    $("load-status").hidden = true;
    $("key-forget").hidden = true;
    $("key-prompt").hidden = false;
    $("key-message").textContent = message;
    $("key-input").focus();
  }
  function load(key) {
    $("key-prompt").hidden = true;
    status("Loading the score record…", false);
    fetch(dataUrl, { headers: { Accept: "application/json", Authorization: "Bearer " + key }, cache: "no-store", credentials: "omit" })
      .then(function (response) {
        return response.json().then(function (body) { return [response, body]; }, function () { return [response, null]; });
      })
      .then(function (answer) {
        const response = answer[0];
        const body = answer[1];
        if (response.ok && body && body.summary) {
          $("subtitle").textContent = body.subtitle;
          $("key-forget").hidden = false;
          render(body.summary);
          return;
        }
        const reason = body && body.error && body.error.message ? body.error.message : "no reason given";
        if (response.status === 401) {
          keepKey(null);
          ask("The service refused that key (" + reason + "). Enter a valid API key.");
          return;
        }
        status("The service could not show its score record: " + reason + " (HTTP " + response.status + ").", true);
      }, function (error) {
        status("The service could not be reached: " + error.message, true);
      });
  }
  $("key-form").onsubmit = function (event) {
    event.preventDefault();  // the key never goes into a URL (the policy forbids a form's submission too)
    const input = $("key-input");
    const key = input.value.trim();
    input.value = "";
    // A header carries bytes; the service compares them with the key's UTF-8, which a browser
    // cannot send: say so rather than fail as a wrong key.
    if (!/^[\x20-\x7e]+$/.test(key)) {
      ask("This page can send only a key of printable ASCII characters; for another key use curl or `mentor-reward report` (see docs/dashboard.md).");
      return;
    }
    keepKey(key);
    load(key);
  };
  $("key-forget").onclick = function () { keepKey(null); location.reload(); };
  document.querySelectorAll("main > .card").forEach(function (node) { node.hidden = true; });
  const kept = readKey();
  if (kept) load(kept); else ask("");
})();
