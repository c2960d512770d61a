/* aether flamegraph report: builds every view from the embedded, pre-aggregated data.
 *
 * The data (see aether_perf/report/html/payload.py) holds a trie of call paths (node 0 = root;
 * a parent's id is below its children's) and, per thread and time cell, sparse (node, weight,
 * samples) lists. A view (thread selection, time range, idle on/off) is summed from those lists
 * into per-node self weights, then into inclusive totals by one pass from the last node down.
 * Frames are absolutely positioned <div>s; no library, no network.
 */
(function () {
  'use strict';

  var D = JSON.parse(document.getElementById('aether-data').textContent);
  var $ = function (id) { return document.getElementById(id); };

  var ROW = 18;          // px per frame row (matches --row in the CSS)
  var MIN_PX = 0.5;      // frames narrower than this are not drawn
  var TEXT_PX = 22;      // frames narrower than this get no label
  var TABLE_ROWS = 500;  // rows shown in the top-functions table

  var FUNCS = D.functions;
  var PARENT = Int32Array.from(D.nodes.parent);
  var FUNC = Int32Array.from(D.nodes.func);
  var N = PARENT.length;
  var CHILDREN = [];
  for (var i = 0; i < N; i++) CHILDREN.push([]);
  for (var n = 1; n < N; n++) CHILDREN[PARENT[n]].push(n);
  var TL = D.timeline;
  var CELLS = TL.buckets / TL.cell_span;
  var DIFF = D.diff;

  var state = {
    thread: -1,          // -1: all threads merged, else an index into D.threads
    range: null,         // null or [lo, hi): cells
    idle: true,
    orient: 'icicle',
    leftHeavy: true,
    zoom: 0,
    search: null,        // RegExp or null
    sortKey: D.diff ? 'dSelf' : 'self',  // a diff opens on the biggest changes of self share
    sortDesc: true
  };
  var agg = null;        // {selfW, selfN, totW, totN}
  var matchedFuncs = null;

  // ---------------------------------------------------------------- formatting

  function trimNumber(text) {
    if (text.indexOf('.') < 0) return text;
    return text.replace(/0+$/, '').replace(/\.$/, '');
  }

  function fmtNs(ns) {
    if (!(ns > 0)) return '0s';
    var units = [['h', 3.6e12], ['m', 6e10], ['s', 1e9], ['ms', 1e6], ['us', 1e3], ['ns', 1]];
    for (var k = 0; k < units.length; k++) {
      var scale = units[k][1];
      if (ns >= scale || units[k][0] === 'ns') {
        var v = ns / scale;
        var digits = v >= 100 ? 0 : v >= 10 ? 1 : 2;
        return trimNumber(v.toFixed(digits)) + units[k][0];
      }
    }
    return ns + 'ns';
  }

  function fmtPct(p) {
    if (p > 0 && p < 0.1) return p.toPrecision(2) + '%';
    return p.toFixed(1) + '%';
  }

  function fmtPp(p) {
    var text = (p >= 0 ? '+' : '') + p.toFixed(1);
    if (text === '+0.0' || text === '-0.0') text = '0.0';
    return text + ' pp';
  }

  function fmtCount(x) { return Math.round(x).toLocaleString('en-US'); }

  function escapeHtml(text) {
    return String(text).replace(/[&<>"']/g, function (c) {
      return { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c];
    });
  }

  function escapeRegExp(text) { return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'); }

  function secondsOfCell(cell) { return cell * TL.cell_span * TL.span_ns / TL.buckets; }

  // ---------------------------------------------------------------- colours

  function hash(text) {  // FNV-1a over UTF-16 code units (report/svg.py uses the same)
    var h = 0x811c9dc5;
    for (var k = 0; k < text.length; k++) {
      h ^= text.charCodeAt(k);
      h = Math.imul(h, 0x01000193);
    }
    return h >>> 0;
  }

  var warmCache = new Map();
  function warm(name) {  // a warm colour per function name, stable across reports
    var c = warmCache.get(name);
    if (c) return c;
    var h = hash(name);
    var v1 = (h & 0xff) / 255, v2 = ((h >>> 8) & 0xff) / 255, v3 = ((h >>> 16) & 0xff) / 255;
    c = 'rgb(' + Math.round(205 + 50 * v3) + ',' + Math.round(80 + 150 * v1) + ',' + Math.round(30 + 40 * v2) + ')';
    warmCache.set(name, c);
    return c;
  }

  function diffColour(delta, scale) {  // red grew, blue shrank; intensity by |delta| / scale
    var t = Math.min(1, Math.abs(delta) / scale);
    if (t < 0.005) return ['rgb(232,232,232)', false];
    if (delta > 0) {
      var gb = Math.round(232 - 182 * t);
      return ['rgb(255,' + gb + ',' + gb + ')', t > 0.6];
    }
    var rg = Math.round(232 - 182 * t);
    return ['rgb(' + rg + ',' + Math.round(232 - 122 * t) + ',255)', t > 0.6];
  }

  // ---------------------------------------------------------------- aggregation

  function aggregate() {
    var selfW = new Float64Array(N), selfN = new Float64Array(N);
    var lo = state.range ? state.range[0] : 0, hi = state.range ? state.range[1] : CELLS;
    for (var t = 0; t < TL.threads.length; t++) {
      if (state.thread >= 0 && state.thread !== t) continue;
      var th = TL.threads[t];
      var idle = state.idle ? null : th.idle_flag;
      var node = th.node, weight = th.weight, samples = th.samples;
      for (var k = th.offsets[lo], end = th.offsets[hi]; k < end; k++) {
        if (idle && idle[k]) continue;
        selfW[node[k]] += weight[k];
        selfN[node[k]] += samples[k];
      }
    }
    var totW = selfW.slice(), totN = selfN.slice();
    for (var m = N - 1; m > 0; m--) {
      totW[PARENT[m]] += totW[m];
      totN[PARENT[m]] += totN[m];
    }
    agg = { selfW: selfW, selfN: selfN, totW: totW, totN: totN };
  }

  function nodeName(node) { return node === 0 ? 'all' : FUNCS[FUNC[node]][0]; }

  function compareNames(a, b) {
    if (a === b) return 0;
    var fa = FUNCS[FUNC[a]], fb = FUNCS[FUNC[b]];
    if (fa[0] !== fb[0]) return fa[0] < fb[0] ? -1 : 1;
    if (fa[1] !== fb[1]) return fa[1] < fb[1] ? -1 : 1;
    return fa[2] - fb[2];
  }

  function orderedChildren(node) {
    var kids = CHILDREN[node].filter(function (c) { return agg.totW[c] > 0; });
    if (state.leftHeavy) kids.sort(function (a, b) { return agg.totW[b] - agg.totW[a] || compareNames(a, b); });
    else kids.sort(compareNames);
    return kids;
  }

  function pctOfSelection(weight) { return agg.totW[0] > 0 ? 100 * weight / agg.totW[0] : 0; }

  function deltaOf(node) {  // change of the node's share, in percentage points (diff view)
    return pctOfSelection(agg.totW[node]) - DIFF.node_pct[node];
  }

  // ---------------------------------------------------------------- search

  function applySearch() {
    var input = $('search');
    var text = input.value;
    input.classList.remove('bad');
    state.search = null;
    matchedFuncs = null;
    if (!text) return;
    try {
      state.search = new RegExp(text);
    } catch (err) {
      state.search = new RegExp(escapeRegExp(text));  // not a valid regex: plain substring
      input.classList.add('bad');
    }
    matchedFuncs = new Uint8Array(FUNCS.length);
    for (var f = 0; f < FUNCS.length; f++) matchedFuncs[f] = state.search.test(FUNCS[f][0]) ? 1 : 0;
  }

  function isMatch(node) { return matchedFuncs !== null && node > 0 && matchedFuncs[FUNC[node]] === 1; }

  function matchedWeight() {  // weight of samples with a matching function anywhere on the stack
    var under = new Uint8Array(N), sum = 0;
    for (var node = 1; node < N; node++) {
      if (agg.totW[node] <= 0) continue;
      if (under[PARENT[node]]) { under[node] = 1; continue; }
      if (isMatch(node)) { under[node] = 1; sum += agg.totW[node]; }
    }
    return sum;
  }

  function showMatched() {
    var el = $('matched');
    if (!matchedFuncs) { el.textContent = ''; return; }
    var w = matchedWeight();
    el.textContent = 'Matched: ' + fmtPct(pctOfSelection(w)) + ' (' + fmtNs(w) + ')';
  }

  // ---------------------------------------------------------------- flamegraph

  function renderFlame() {
    var box = $('flame');
    var width = box.clientWidth;
    if (!(agg.totW[0] > 0)) {
      box.style.height = 'auto';
      box.innerHTML = '<div class="empty">No samples in this selection.</div>';
      return;
    }
    var z = state.zoom;
    while (z > 0 && !(agg.totW[z] > 0)) z = PARENT[z];
    state.zoom = z;
    var chain = [];
    for (var a = z; a >= 0; a = PARENT[a]) chain.push(a);
    chain.reverse();
    var frames = [];
    for (var d = 0; d < chain.length; d++) frames.push([chain[d], 0, width, d, chain[d] !== z]);
    var scale = width / agg.totW[z];
    var maxDepth = chain.length - 1;
    var pending = [[z, 0, chain.length - 1]];
    while (pending.length) {
      var item = pending.pop();
      var x = item[1], depth = item[2] + 1;
      var kids = orderedChildren(item[0]);
      for (var k = 0; k < kids.length; k++) {
        var w = agg.totW[kids[k]] * scale;
        if (w >= MIN_PX) {
          frames.push([kids[k], x, w, depth, false]);
          if (depth > maxDepth) maxDepth = depth;
          pending.push([kids[k], x, depth]);
        }
        x += w;
      }
    }
    var diffScale = 0.5;
    if (DIFF) {
      for (var j = 0; j < frames.length; j++) diffScale = Math.max(diffScale, Math.abs(deltaOf(frames[j][0])));
    }
    var frag = document.createDocumentFragment();
    for (var f = 0; f < frames.length; f++) {
      var fr = frames[f], node = fr[0];
      var el = document.createElement('div');
      var cls = 'fr';
      if (fr[4]) cls += ' anc';
      var colour;
      if (DIFF) {
        var dc = diffColour(deltaOf(node), diffScale);
        colour = dc[0];
        if (dc[1]) cls += ' light';
      } else {
        colour = node === 0 ? 'rgb(214,210,200)' : warm(nodeName(node));
      }
      if (matchedFuncs) cls += isMatch(node) ? ' match' : ' dim';
      el.className = cls;
      el.style.left = fr[1] + 'px';
      el.style.width = fr[2] + 'px';
      el.style.top = (state.orient === 'flame' ? maxDepth - fr[3] : fr[3]) * ROW + 'px';
      el.style.backgroundColor = colour;
      el.setAttribute('data-node', String(node));
      el.setAttribute('data-name', nodeName(node));
      if (fr[2] >= TEXT_PX) {
        el.textContent = node === 0 ? 'all (' + fmtNs(agg.totW[0]) + ', ' + fmtCount(agg.totN[0]) + ' samples)' : nodeName(node);
      }
      frag.appendChild(el);
    }
    box.style.height = (maxDepth + 1) * ROW + 'px';
    box.replaceChildren(frag);
    renderCrumbs(chain);
  }

  function renderCrumbs(chain) {
    var el = $('crumbs');
    if (chain.length <= 1) { el.textContent = ''; return; }
    el.textContent = 'zoomed: ' + chain.slice(1).map(nodeName).join(' \u203a ');
  }

  function renderStatus() {
    var parts = [];
    parts.push(state.thread < 0 ? 'all threads' : threadLabel(D.threads[state.thread]));
    if (state.range) {
      parts.push(fmtNs(secondsOfCell(state.range[0])) + ' \u2013 ' + fmtNs(secondsOfCell(state.range[1])));
    } else {
      parts.push('whole timeline');
    }
    if (TL.has_idle && !state.idle) parts.push('idle excluded');
    $('status').innerHTML = '<b>' + escapeHtml(fmtNs(agg.totW[0])) + '</b> in <b>' + fmtCount(agg.totN[0]) +
      '</b> samples \u00b7 ' + escapeHtml(parts.join(' \u00b7 '));
  }

  // ---------------------------------------------------------------- tooltip

  var tip = $('tooltip');

  function showTip(html, ev) {
    tip.innerHTML = html;
    tip.hidden = false;
    placeTip(ev);
  }

  function placeTip(ev) {
    var pad = 8, w = tip.offsetWidth, h = tip.offsetHeight;
    var x = ev.clientX + 14, y = ev.clientY + 16;
    if (x + w > window.innerWidth - pad) x = Math.max(pad, ev.clientX - w - 14);
    if (y + h > window.innerHeight - pad) y = Math.max(pad, ev.clientY - h - 12);
    tip.style.left = x + 'px';
    tip.style.top = y + 'px';
  }

  function hideTip() { tip.hidden = true; }

  function row(key, value) { return '<tr><td class="k">' + key + '</td><td>' + value + '</td></tr>'; }

  function frameTip(node) {
    var html;
    if (node === 0) {
      html = '<div class="name">all</div><div class="where">every selected sample</div>';
    } else {
      var fn = FUNCS[FUNC[node]];
      html = '<div class="name">' + escapeHtml(fn[0]) + '</div>' +
        '<div class="where">' + escapeHtml(fn[1] ? fn[1] + ':' + fn[2] : '(no file)') + '</div>';
    }
    html += '<table>';
    html += row('Total', escapeHtml(fmtNs(agg.totW[node])) + ' \u00b7 ' + fmtPct(pctOfSelection(agg.totW[node])) +
      ' \u00b7 ' + fmtCount(agg.totN[node]) + ' samples');
    html += row('Self', escapeHtml(fmtNs(agg.selfW[node])) + ' \u00b7 ' + fmtPct(pctOfSelection(agg.selfW[node])) +
      ' \u00b7 ' + fmtCount(agg.selfN[node]) + ' samples');
    if (state.zoom > 0 && node !== state.zoom && agg.totW[state.zoom] > 0) {
      html += row('Of zoomed', fmtPct(100 * agg.totW[node] / agg.totW[state.zoom]));
    }
    if (DIFF) {
      var delta = deltaOf(node);
      var cls = delta > 0.05 ? 'up' : delta < -0.05 ? 'down' : '';
      html += row('Base', fmtPct(DIFF.node_pct[node]) + ' \u2192 now ' + fmtPct(pctOfSelection(agg.totW[node])) +
        ' <span class="' + cls + '">(' + fmtPp(delta) + ')</span>');
    }
    return html + '</table>';
  }

  // ---------------------------------------------------------------- threads and controls

  function threadLabel(th) { return th.name + ' (' + th.tid + ')'; }

  function fillThreads() {
    var select = $('thread');
    var whole = D.meta.total_ns;
    var opt = document.createElement('option');
    opt.value = '-1';
    opt.textContent = 'All threads (' + D.threads.length + ')';
    select.appendChild(opt);
    D.threads.forEach(function (th, index) {
      var o = document.createElement('option');
      o.value = String(index);
      o.textContent = threadLabel(th) + ' \u2013 ' + fmtPct(whole > 0 ? 100 * th.total_ns / whole : 0);
      select.appendChild(o);
    });
  }

  function fillFacts() {
    var m = D.meta;
    var facts = [];
    facts.push('<b>' + escapeHtml(m.mode) + '</b> mode');
    facts.push('<b>' + fmtCount(m.samples) + '</b> samples');
    facts.push('<b>' + escapeHtml(fmtNs(m.total_ns)) + '</b> ' + (m.mode === 'cpu' ? 'CPU time' : 'wall time') + ' sampled');
    facts.push('duration <b>' + escapeHtml(fmtNs(m.duration * 1e9)) + '</b>');
    if (m.interval > 0) facts.push('interval <b>' + escapeHtml(fmtNs(m.interval * 1e9)) + '</b>');
    facts.push('<b>' + D.threads.length + '</b> thread' + (D.threads.length === 1 ? '' : 's'));
    if (m.dropped) facts.push('<b>' + fmtCount(m.dropped) + '</b> dropped');
    if (m.python_version) facts.push('Python ' + escapeHtml(m.python_version));
    if (m.start_time) facts.push('started ' + escapeHtml(new Date(m.start_time * 1000).toISOString().replace('T', ' ').slice(0, 19)) + ' UTC');
    $('facts').innerHTML = facts.join(' \u00b7 ');
    if (DIFF) {
      var legend = $('diff-legend');
      legend.hidden = false;
      legend.innerHTML = '<div>Differential flamegraph against the base <b>' + escapeHtml(DIFF.title) + '</b> (' +
        escapeHtml(fmtNs(DIFF.total_ns)) + ' in ' + fmtCount(DIFF.samples) + ' samples). ' +
        'Widths are this profile; colours show how each frame\u2019s share of its profile changed.</div>' +
        '<div class="scale">shrank<span class="swatch" style="background:linear-gradient(90deg,rgb(50,110,255),' +
        'rgb(232,232,232))"></span><span class="swatch" style="background:linear-gradient(90deg,rgb(232,232,232),' +
        'rgb(255,50,50))"></span>grew' +
        (DIFF.gone_pct > 0 ? ' \u00b7 stacks of the base missing here: ' + fmtPct(DIFF.gone_pct) + ' of the base' : '') +
        '</div>';
    }
  }

  function setOrient(orient) {
    state.orient = orient;
    $('view-icicle').classList.toggle('on', orient === 'icicle');
    $('view-flame').classList.toggle('on', orient === 'flame');
    $('view-icicle').setAttribute('aria-pressed', String(orient === 'icicle'));
    $('view-flame').setAttribute('aria-pressed', String(orient === 'flame'));
  }

  // ---------------------------------------------------------------- timeline

  var drag = null;

  function timelineSeries() {
    var out = new Float64Array(TL.buckets);
    for (var t = 0; t < TL.threads.length; t++) {
      if (state.thread >= 0 && state.thread !== t) continue;
      var th = TL.threads[t];
      for (var b = 0; b < TL.buckets; b++) {
        out[b] += th.busy[b] + (state.idle && th.idle ? th.idle[b] : 0);
      }
    }
    return out;
  }

  function idleSeries() {
    var out = new Float64Array(TL.buckets);
    if (!TL.has_idle || !state.idle) return out;
    for (var t = 0; t < TL.threads.length; t++) {
      if (state.thread >= 0 && state.thread !== t) continue;
      for (var b = 0; b < TL.buckets; b++) out[b] += TL.threads[t].idle[b];
    }
    return out;
  }

  function renderTimeline() {
    var box = $('timeline'), canvas = $('timeline-canvas');
    var w = box.clientWidth, h = box.clientHeight, ratio = window.devicePixelRatio || 1;
    canvas.width = Math.max(1, Math.round(w * ratio));
    canvas.height = Math.max(1, Math.round(h * ratio));
    var ctx = canvas.getContext('2d');
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, w, h);
    ctx.fillStyle = '#f6f4ef';
    ctx.fillRect(0, 0, w, h);
    var all = timelineSeries(), idle = idleSeries();
    var peak = 0;
    for (var b = 0; b < TL.buckets; b++) peak = Math.max(peak, all[b]);
    var bw = w / TL.buckets;
    if (peak > 0) {
      for (var k = 0; k < TL.buckets; k++) {
        var busyH = (all[k] - idle[k]) / peak * (h - 4), idleH = idle[k] / peak * (h - 4);
        ctx.fillStyle = '#e0702a';
        ctx.fillRect(k * bw, h - busyH, Math.max(bw - 0.5, 0.5), busyH);
        if (idleH > 0) {
          ctx.fillStyle = '#c3c8cf';
          ctx.fillRect(k * bw, h - busyH - idleH, Math.max(bw - 0.5, 0.5), idleH);
        }
      }
    }
    var sel = $('timeline-sel');
    var range = drag ? drag.cells : state.range;
    if (range) {
      sel.hidden = false;
      sel.style.left = range[0] / CELLS * w + 'px';
      sel.style.width = (range[1] - range[0]) / CELLS * w + 'px';
    } else {
      sel.hidden = true;
    }
    $('range-label').textContent = state.range ? 'selected ' + fmtNs(secondsOfCell(state.range[0])) + ' \u2013 ' +
      fmtNs(secondsOfCell(state.range[1])) : '';
    $('clear-range').hidden = !state.range;
  }

  function renderAxis() {
    var axis = $('timeline-axis'), w = axis.clientWidth;
    var ticks = Math.max(2, Math.min(10, Math.floor(w / 110)));
    var html = '';
    for (var k = 0; k <= ticks; k++) {
      var x = k / ticks * w;
      var cls = k === 0 ? ' class="first"' : '';
      var style = k === ticks ? 'right:0;transform:none' : 'left:' + x + 'px';
      html += '<span' + cls + ' style="' + style + '">' + escapeHtml(fmtNs(TL.span_ns * k / ticks)) + '</span>';
    }
    axis.innerHTML = html;
  }

  function cellsOfPixels(x0, x1, w) {  // the dragged pixels, snapped to the nearest cell bounds
    var a = Math.max(0, Math.min(x0, x1)), b = Math.min(w, Math.max(x0, x1));
    var lo = Math.round(a / w * CELLS), hi = Math.round(b / w * CELLS);
    if (hi <= lo) {
      hi = Math.min(CELLS, lo + 1);
      lo = hi - 1;
    }
    return [lo, hi];
  }

  function timelineX(ev) {
    var rect = $('timeline').getBoundingClientRect();
    return Math.max(0, Math.min(rect.width, ev.clientX - rect.left));
  }

  function timelineTip(ev) {
    var w = $('timeline').clientWidth, series = timelineSeries();
    var b = Math.min(TL.buckets - 1, Math.floor(timelineX(ev) / w * TL.buckets));
    var start = TL.span_ns * b / TL.buckets, end = TL.span_ns * (b + 1) / TL.buckets;
    showTip('<div class="name">' + escapeHtml(fmtNs(start)) + ' \u2013 ' + escapeHtml(fmtNs(end)) + '</div><table>' +
      row('Sampled', escapeHtml(fmtNs(series[b]))) + '</table><div class="where">drag to select a range</div>', ev);
  }

  // ---------------------------------------------------------------- spans

  function spanColour(name) {
    var h = hash(name);
    var v1 = (h & 0xff) / 255, v2 = ((h >>> 8) & 0xff) / 255;
    return 'rgb(' + Math.round(120 + 60 * v1) + ',' + Math.round(175 + 50 * v2) + ',' + Math.round(215 + 35 * v1) + ')';
  }

  function renderSpans() {
    var S = D.spans;
    var box = $('spans');
    if (!S || !S.spans.length) return;
    box.hidden = false;
    var w = box.clientWidth, rowH = 15;
    var depthOf = S.tracks.map(function () { return 0; });
    S.spans.forEach(function (s) { depthOf[s[0]] = Math.max(depthOf[s[0]], s[1] + 1); });
    var top = [], y = 2, labelH = 14;
    var frag = document.createDocumentFragment();
    for (var t = 0; t < S.tracks.length; t++) {
      var label = document.createElement('div');
      label.className = 'track-label';
      label.style.top = y + 'px';
      label.textContent = S.tracks[t];
      frag.appendChild(label);
      top.push(y + labelH);
      y += labelH + depthOf[t] * rowH + 4;
    }
    S.spans.forEach(function (s, index) {
      var x0 = Math.max(0, s[2]) / TL.span_ns * w, x1 = Math.min(TL.span_ns, s[3]) / TL.span_ns * w;
      if (x1 - x0 < 0.3 && x1 > x0) x1 = x0 + 0.3;
      if (x1 <= x0) return;
      var el = document.createElement('div');
      el.className = 'span';
      el.style.left = x0 + 'px';
      el.style.width = (x1 - x0) + 'px';
      el.style.top = top[s[0]] + s[1] * rowH + 'px';
      el.style.background = spanColour(S.names[s[4]]);
      el.setAttribute('data-span', String(index));
      if (x1 - x0 > 30) el.textContent = S.names[s[4]];
      frag.appendChild(el);
    });
    var note = '';
    if (!S.aligned) note = 'spans not aligned with the samples (the profile has no monotonic start)';
    else if (S.spans.length < S.total) note = 'showing ' + fmtCount(S.spans.length) + ' of ' + fmtCount(S.total) + ' spans';
    if (note) {
      var n = document.createElement('div');
      n.className = 'track-label';
      n.style.top = y + 'px';
      n.textContent = note;
      frag.appendChild(n);
      y += 14;
    }
    box.style.height = y + 'px';
    box.replaceChildren(frag);
  }

  function spanTip(index) {
    var S = D.spans, s = S.spans[index];
    return '<div class="name">' + escapeHtml(S.names[s[4]]) + '</div><div class="where">' + escapeHtml(S.tracks[s[0]]) +
      '</div><table>' + row('Duration', escapeHtml(fmtNs(s[3] - s[2]))) + row('Start', escapeHtml(fmtNs(Math.max(0, s[2])))) +
      row('Depth', String(s[1])) + '</table><div class="where">click to select its time range</div>';
  }

  // ---------------------------------------------------------------- top-functions table

  var COLUMNS = [
    { key: 'name', label: 'Function', text: true },
    { key: 'loc', label: 'Location', text: true },
    { key: 'self', label: 'Self' },
    { key: 'selfPct', label: 'Self %', sortAs: 'self' },
    { key: 'total', label: 'Total' },
    { key: 'totalPct', label: 'Total %', sortAs: 'total' },
    { key: 'selfSamples', label: 'Self samples' },
    { key: 'totalSamples', label: 'Total samples' }
  ];
  if (DIFF) {
    COLUMNS.push({ key: 'dSelf', label: '\u0394 self' });
    COLUMNS.push({ key: 'dTotal', label: '\u0394 total' });
  }

  function functionRows() {
    var F = FUNCS.length;
    var selfW = new Float64Array(F), totW = new Float64Array(F), selfN = new Float64Array(F), totN = new Float64Array(F);
    var onPath = new Int32Array(F);
    var pending = [0];
    while (pending.length) {
      var item = pending.pop();
      if (item < 0) { onPath[FUNC[~item]]--; continue; }
      var f = FUNC[item];
      if (f >= 0) {
        selfW[f] += agg.selfW[item];
        selfN[f] += agg.selfN[item];
        if (onPath[f] === 0) { totW[f] += agg.totW[item]; totN[f] += agg.totN[item]; }
        onPath[f]++;
        pending.push(~item);
      }
      var kids = CHILDREN[item];
      for (var k = 0; k < kids.length; k++) if (agg.totW[kids[k]] > 0 || agg.totN[kids[k]] > 0) pending.push(kids[k]);
    }
    var rows = [];
    for (var g = 0; g < F; g++) {
      if (!(totN[g] > 0)) continue;
      var r = {
        f: g, name: FUNCS[g][0], loc: FUNCS[g][1] ? FUNCS[g][1] + ':' + FUNCS[g][2] : '',
        self: selfW[g], total: totW[g], selfSamples: selfN[g], totalSamples: totN[g],
        selfPct: pctOfSelection(selfW[g]), totalPct: pctOfSelection(totW[g])
      };
      if (DIFF) { r.dSelf = r.selfPct - DIFF.self_pct[g]; r.dTotal = r.totalPct - DIFF.total_pct[g]; }
      rows.push(r);
    }
    return rows;
  }

  function renderHead() {
    var head = $('top-head');
    head.innerHTML = '';
    COLUMNS.forEach(function (c) {
      var th = document.createElement('th');
      th.textContent = c.label;
      th.setAttribute('data-key', c.key);
      if (c.text) th.className = 'text';
      var sortKey = c.sortAs || c.key;
      th.setAttribute('aria-sort', sortKey === state.sortKey && !c.sortAs ? (state.sortDesc ? 'descending' : 'ascending') : 'none');
      th.addEventListener('click', function () {
        if (state.sortKey === sortKey) state.sortDesc = !state.sortDesc;
        else { state.sortKey = sortKey; state.sortDesc = !c.text; }
        renderHead();
        renderTable();
      });
      head.appendChild(th);
    });
  }

  function renderTable() {
    var rows = functionRows();
    var key = state.sortKey, sign = state.sortDesc ? -1 : 1;
    var magnitude = key === 'dSelf' || key === 'dTotal';
    rows.sort(function (a, b) {
      var x = a[key], y = b[key];
      if (magnitude) { x = Math.abs(x); y = Math.abs(y); }
      if (x !== y) return (x < y ? -1 : 1) * sign;
      if (a.self !== b.self) return b.self - a.self;
      return a.name < b.name ? -1 : a.name > b.name ? 1 : a.f - b.f;
    });
    var shown = rows.slice(0, TABLE_ROWS);
    var html = '';
    for (var k = 0; k < shown.length; k++) {
      var r = shown[k];
      var bar = Math.min(100, r.selfPct).toFixed(1);
      html += '<tr data-f="' + r.f + '"><td class="text fn" title="' + escapeHtml(r.name) + '">' + escapeHtml(r.name) +
        '</td><td class="text loc" title="' + escapeHtml(r.loc) + '">' + escapeHtml(r.loc) + '</td><td>' +
        escapeHtml(fmtNs(r.self)) + '</td><td style="background:linear-gradient(90deg,rgba(224,112,42,.28) ' + bar +
        '%,transparent ' + bar + '%)">' + fmtPct(r.selfPct) + '</td><td>' + escapeHtml(fmtNs(r.total)) + '</td><td>' +
        fmtPct(r.totalPct) + '</td><td>' + fmtCount(r.selfSamples) + '</td><td>' + fmtCount(r.totalSamples) + '</td>';
      if (DIFF) {
        html += '<td class="' + deltaClass(r.dSelf) + '">' + fmtPp(r.dSelf) + '</td><td class="' + deltaClass(r.dTotal) +
          '">' + fmtPp(r.dTotal) + '</td>';
      }
      html += '</tr>';
    }
    $('top-body').innerHTML = html;
    $('table-note').textContent = rows.length > shown.length ?
      '(' + shown.length + ' of ' + rows.length + ' functions; click a header to sort, a row to search it)' :
      '(' + rows.length + ' functions; click a header to sort, a row to search it)';
  }

  function deltaClass(pp) { return pp > 0.05 ? 'grew' : pp < -0.05 ? 'shrank' : ''; }

  // ---------------------------------------------------------------- wiring

  function update() {
    aggregate();
    renderStatus();
    renderTimeline();
    renderFlame();
    showMatched();
    renderTable();
  }

  function refreshFlame() {
    renderFlame();
    showMatched();
  }

  function init() {
    fillFacts();
    fillThreads();
    setOrient(state.orient);
    if (TL.has_idle) $('idle-box').hidden = false;
    renderHead();
    renderAxis();
    renderSpans();
    update();

    $('thread').addEventListener('change', function (ev) {
      state.thread = parseInt(ev.target.value, 10);
      update();
    });
    $('view-icicle').addEventListener('click', function () { setOrient('icicle'); renderFlame(); });
    $('view-flame').addEventListener('click', function () { setOrient('flame'); renderFlame(); });
    $('left-heavy').addEventListener('change', function (ev) { state.leftHeavy = ev.target.checked; renderFlame(); });
    $('include-idle').addEventListener('change', function (ev) { state.idle = ev.target.checked; update(); });
    $('reset-zoom').addEventListener('click', function () { state.zoom = 0; renderFlame(); });
    $('search').addEventListener('input', function () { applySearch(); refreshFlame(); });
    $('clear-range').addEventListener('click', function () { state.range = null; update(); });

    var flame = $('flame');
    flame.addEventListener('click', function (ev) {
      var el = ev.target.closest('.fr');
      if (!el) return;
      state.zoom = parseInt(el.getAttribute('data-node'), 10);
      renderFlame();
      showMatched();
    });
    flame.addEventListener('mousemove', function (ev) {
      var el = ev.target.closest('.fr');
      if (!el) { hideTip(); return; }
      showTip(frameTip(parseInt(el.getAttribute('data-node'), 10)), ev);
    });
    flame.addEventListener('mouseleave', hideTip);

    var spans = $('spans');
    spans.addEventListener('mousemove', function (ev) {
      var el = ev.target.closest('.span');
      if (!el) { hideTip(); return; }
      showTip(spanTip(parseInt(el.getAttribute('data-span'), 10)), ev);
    });
    spans.addEventListener('mouseleave', hideTip);
    spans.addEventListener('click', function (ev) {
      var el = ev.target.closest('.span');
      if (!el) return;
      var s = D.spans.spans[parseInt(el.getAttribute('data-span'), 10)];
      var lo = Math.max(0, Math.floor(Math.max(0, s[2]) / TL.span_ns * CELLS));
      var hi = Math.min(CELLS, Math.max(lo + 1, Math.ceil(Math.min(TL.span_ns, s[3]) / TL.span_ns * CELLS)));
      state.range = [lo, hi];
      update();
    });

    var timeline = $('timeline');
    timeline.addEventListener('mousedown', function (ev) {
      if (ev.button !== 0) return;
      ev.preventDefault();
      var x = timelineX(ev);
      drag = { x0: x, x1: x, cells: null };
      hideTip();
    });
    timeline.addEventListener('mousemove', function (ev) { if (!drag) timelineTip(ev); });
    timeline.addEventListener('mouseleave', function () { if (!drag) hideTip(); });
    window.addEventListener('mousemove', function (ev) {
      if (!drag) return;
      drag.x1 = timelineX(ev);
      drag.cells = Math.abs(drag.x1 - drag.x0) >= 3 ? cellsOfPixels(drag.x0, drag.x1, timeline.clientWidth) : null;
      renderTimeline();
    });
    window.addEventListener('mouseup', function (ev) {
      if (!drag) return;
      drag.x1 = timelineX(ev);
      var moved = Math.abs(drag.x1 - drag.x0) >= 3;
      state.range = moved ? cellsOfPixels(drag.x0, drag.x1, timeline.clientWidth) : null;
      if (state.range && state.range[0] === 0 && state.range[1] === CELLS) state.range = null;
      drag = null;
      update();
    });

    $('top-body').addEventListener('click', function (ev) {
      var tr = ev.target.closest('tr');
      if (!tr) return;
      var f = parseInt(tr.getAttribute('data-f'), 10);
      $('search').value = '^' + escapeRegExp(FUNCS[f][0]) + '$';
      applySearch();
      refreshFlame();
      $('flame').scrollIntoView({ block: 'nearest' });
    });

    document.addEventListener('keydown', function (ev) {
      var typing = document.activeElement === $('search');
      if (ev.key === '/' && !typing) { ev.preventDefault(); $('search').focus(); }
      else if (ev.key === 'Escape') {
        if (typing && $('search').value) { $('search').value = ''; applySearch(); refreshFlame(); }
        else { state.zoom = 0; renderFlame(); }
      }
    });

    var resizeTimer = 0;
    window.addEventListener('resize', function () {
      clearTimeout(resizeTimer);
      resizeTimer = setTimeout(function () { renderAxis(); renderSpans(); renderTimeline(); refreshFlame(); }, 80);
    });
    renderAnalyses();
    document.body.setAttribute('data-ready', '1');
  }

  // Findings and the lock / thread / I/O / GIL tables (payload "analyses"; cells come formatted).
  function renderAnalyses() {
    var A = D.analyses;
    if (!A) return;
    var html = '<h2>Findings <span class="note">' + (A.findings.length ? A.findings.length : 'none') + '</span></h2>';
    if (A.findings.length) {
      html += '<ul class="findings">';
      A.findings.forEach(function (f) {
        html += '<li class="sev-' + escapeHtml(f.severity) + '"><b>' + escapeHtml(f.rule) + '</b> ' +
          escapeHtml(f.message) + (f.where ? ' <span class="note">at ' + escapeHtml(f.where) + '</span>' : '') + '</li>';
      });
      html += '</ul>';
    }
    A.tables.forEach(function (t) {
      html += '<h2>' + escapeHtml(t.title) + '</h2><table class="analysis"><thead><tr>';
      t.columns.forEach(function (c) { html += '<th>' + escapeHtml(c) + '</th>'; });
      html += '</tr></thead><tbody>';
      t.rows.forEach(function (r) {
        html += '<tr>' + r.map(function (cell) {
          return '<td' + (typeof cell === 'number' ? ' class="num"' : '') + '>' +
            escapeHtml(typeof cell === 'number' ? fmtCount(cell) : cell) + '</td>';
        }).join('') + '</tr>';
      });
      html += '</tbody></table>';
    });
    var box = $('analyses');
    box.innerHTML = html;
    box.hidden = false;
  }

  init();
})();
