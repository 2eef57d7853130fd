/* captum-bilinear interaction explorer: one pair's token x patch interactions over its
 * image. Plain JavaScript, no dependency, nothing loaded from the network: the data sits
 * in the page as JSON (matrices as base64 float32, the image as a data URI).
 *
 * Every explorer registers itself in window.captumBilinearExplorers[id]; the first one
 * on a page is also window.captumBilinear. Its API (the contract of the page):
 *   methods, tokens, grid: [rows, cols], imageSize: [height, width] as shown,
 *   spanMap(method, start, stop) -> rows*cols numbers (row-major), the span's
 *       interactions per patch (start, stop: rows of A, stop exclusive; CLS left out),
 *   boxMap(method, x0, y0, x1, y1) -> one number per token: patches weighted by the share
 *       of their pixels inside the box (pixels of the image as shown, end exclusive),
 *   show({method, span, box}), state() -> what is drawn now.
 */
(function () {
  "use strict";
  if (window.CaptumBilinearExplorer) { return; }

  function decodeFloat32(text) {
    var bytes = atob(text);
    var buffer = new ArrayBuffer(bytes.length);
    var view = new Uint8Array(buffer);
    for (var i = 0; i < bytes.length; i++) { view[i] = bytes.charCodeAt(i); }
    return new Float32Array(buffer);
  }

  function format(value) {
    if (value === null || value === undefined || isNaN(value)) { return "n/a"; }
    var magnitude = Math.abs(value);
    var text = (magnitude !== 0 && (magnitude < 1e-3 || magnitude >= 1e4)) ? value.toExponential(2)
      : value.toPrecision(3);
    return (value >= 0 ? "+" : "") + text;
  }

  function element(tag, className, text) {
    var node = document.createElement(tag);
    if (className) { node.className = className; }
    if (text !== undefined) { node.textContent = text; }
    return node;
  }

  function Explorer(root, data) {
    this.root = root;
    this.data = data;
    this.id = data.id;
    this.tokens = data.tokens;
    this.grid = data.grid;
    this.patches = data.grid[0] * data.grid[1];
    this.offset = data.hasCls ? 1 : 0;
    this.positions = this.patches + this.offset;
    this.special = {};
    for (var i = 0; i < data.special.length; i++) { this.special[data.special[i]] = true; }
    this.views = {};
    this.methods = [];
    for (var m = 0; m < data.methods.length; m++) {
      var method = data.methods[m];
      method.matrix = decodeFloat32(method.data);
      if (method.matrix.length !== this.tokens.length * this.positions) {
        throw new Error("captum-bilinear explorer: " + method.name + " holds " + method.matrix.length +
                        " values, expected " + this.tokens.length + " x " + this.positions);
      }
      this.views[method.name] = method;
      this.methods.push(method.name);
    }
    this.firstOrder = null;
    if (data.firstOrder) {
      this.firstOrder = data.firstOrder;
      this.firstOrder.values = Array.prototype.slice.call(decodeFloat32(data.firstOrder.data));
      this.firstOrder.name = "first-order";
    }
    this.lut = data.colours;
    this.current = {view: this.methods[0], span: null, preview: null, box: null, opacity: data.opacity};
    if (data.initial) { this.applyInitial(data.initial); }
    this.build();
    this.image = new Image();
    var self = this;
    this.image.onload = function () { self.draw(); };
    this.image.src = data.image;
  }

  Explorer.prototype.checkMethod = function (method) {
    if (!Object.prototype.hasOwnProperty.call(this.views, method)) {
      throw new Error("method: expected one of " + this.methods.join(", ") + ", got " + method);
    }
    return this.views[method];
  };

  Explorer.prototype.checkSpan = function (start, stop) {
    if (!(Number.isInteger(start) && Number.isInteger(stop) && start >= 0 && start < stop &&
          stop <= this.tokens.length)) {
      throw new Error("span: expected 0 <= start < stop <= " + this.tokens.length + ", got (" + start + ", " +
                      stop + ")");
    }
  };

  /* The span's map: A[start:stop, patches] summed over the span (selection.span_image_map). */
  Explorer.prototype.spanMap = function (method, start, stop) {
    var view = this.checkMethod(method);
    this.checkSpan(start, stop);
    var values = new Array(this.patches).fill(0);
    for (var s = start; s < stop; s++) {
      var row = s * this.positions + this.offset;
      for (var p = 0; p < this.patches; p++) { values[p] += view.matrix[row + p]; }
    }
    return values;
  };

  /* The span's value at CLS (drawn off the colour scale). */
  Explorer.prototype.spanCls = function (method, start, stop) {
    if (!this.offset) { return null; }
    var view = this.checkMethod(method);
    var total = 0;
    for (var s = start; s < stop; s++) { total += view.matrix[s * this.positions]; }
    return total;
  };

  /* Share of each patch row / column inside [low, high) of `size` pixels, a pixel counting
   * when its centre is inside (selection.box_patch_weights, separable in rows and columns). */
  function shares(low, high, size, cells) {
    var inside = new Array(cells).fill(0), total = new Array(cells).fill(0);
    for (var pixel = 0; pixel < size; pixel++) {
      var cell = Math.floor(pixel * cells / size), centre = pixel + 0.5;
      total[cell] += 1;
      if (centre >= low && centre < high) { inside[cell] += 1; }
    }
    return inside.map(function (count, index) { return count / total[index]; });
  }

  Explorer.prototype.boxWeights = function (x0, y0, x1, y1) {
    var box = [x0, y0, x1, y1];
    for (var i = 0; i < 4; i++) {
      if (typeof box[i] !== "number" || !isFinite(box[i])) {
        throw new Error("box: expected four numbers (x0, y0, x1, y1), got " + box.join(", "));
      }
    }
    if (!(x0 < x1 && y0 < y1)) { throw new Error("box: expected x0 < x1 and y0 < y1, got " + box.join(", ")); }
    var height = this.data.display[0], width = this.data.display[1];
    var rows = shares(y0, y1, height, this.grid[0]), cols = shares(x0, x1, width, this.grid[1]);
    var weights = new Array(this.patches);
    for (var r = 0; r < this.grid[0]; r++) {
      for (var c = 0; c < this.grid[1]; c++) { weights[r * this.grid[1] + c] = rows[r] * cols[c]; }
    }
    return weights;
  };

  /* The box's caption map: sum_p w_p A[:, p] (selection.box_token_map). */
  Explorer.prototype.boxMap = function (method, x0, y0, x1, y1) {
    var view = this.checkMethod(method);
    var weights = this.boxWeights(x0, y0, x1, y1);
    var values = new Array(this.tokens.length).fill(0);
    for (var s = 0; s < this.tokens.length; s++) {
      var row = s * this.positions + this.offset, total = 0;
      for (var p = 0; p < this.patches; p++) {
        if (weights[p] !== 0) { total += weights[p] * view.matrix[row + p]; }
      }
      values[s] = total;
    }
    return values;
  };

  /* A standalone page's address may say what to show: #method=NAME&span=START,STOP&box=X0,Y0,X1,Y1
   * (the box in the model image's pixels), as the evaluation report's links do. */
  Explorer.prototype.applyAddress = function (fragment) {
    var parameters = new URLSearchParams(fragment), initial = {};
    var numbers = function (text) { return text.split(",").map(Number); };
    if (parameters.get("method")) { initial.method = parameters.get("method"); }
    if (parameters.get("span")) {
      var span = numbers(parameters.get("span"));
      if (span.length === 2 && span[0] >= 0 && span[0] < span[1] && span[1] <= this.tokens.length) { initial.span = span; }
    }
    if (parameters.get("box")) {
      var box = numbers(parameters.get("box")), scale = this.data.display[1] / this.data.modelImageSize[1];
      if (box.length === 4 && box.every(isFinite)) { initial.box = box.map(function (v) { return v * scale; }); }
    }
    this.applyInitial(initial);
    this.select.value = this.current.view;
    this.current.preview = null;
    this.draw();
  };

  Explorer.prototype.applyInitial = function (initial) {
    if (initial.method && (this.views[initial.method] || initial.method === "first-order")) {
      this.current.view = initial.method;
    }
    if (initial.span) { this.checkSpan(initial.span[0], initial.span[1]); this.current.span = initial.span.slice(); }
    if (initial.box) { this.current.box = initial.box.slice(); }
  };

  /* ------------------------------------------------------------------ the page */

  Explorer.prototype.build = function () {
    var self = this, data = this.data, root = this.root;
    root.classList.add("cb-explorer");
    root.textContent = "";
    if (data.title) { root.appendChild(element("div", "cb-title", data.title)); }
    var controls = element("div", "cb-controls");
    var label = element("label", "cb-control", "view ");
    this.select = element("select", "cb-method");
    var names = this.methods.slice();
    for (var i = 0; i < names.length; i++) {
      var option = element("option", null, names[i] + " (" + this.views[names[i]].units + ")");
      option.value = names[i];
      this.select.appendChild(option);
    }
    if (this.firstOrder) {
      var first = element("option", null, this.firstOrder.title + " (" + this.firstOrder.units + ")");
      first.value = "first-order";
      this.select.appendChild(first);
    }
    this.select.value = this.current.view;
    this.select.addEventListener("change", function () { self.current.view = self.select.value; self.draw(); });
    label.appendChild(this.select);
    controls.appendChild(label);
    var opacityLabel = element("label", "cb-control", "opacity ");
    this.opacity = element("input", "cb-opacity");
    this.opacity.type = "range"; this.opacity.min = "0"; this.opacity.max = "1"; this.opacity.step = "0.05";
    this.opacity.value = String(this.current.opacity);
    this.opacity.addEventListener("input", function () {
      self.current.opacity = parseFloat(self.opacity.value); self.draw();
    });
    opacityLabel.appendChild(this.opacity);
    controls.appendChild(opacityLabel);
    var clear = element("button", "cb-clear", "clear");
    clear.type = "button";
    clear.addEventListener("click", function () { self.show({span: null, box: null}); });
    controls.appendChild(clear);
    root.appendChild(controls);

    var main = element("div", "cb-main");
    var stage = element("div", "cb-stage");
    this.canvas = element("canvas", "cb-canvas");
    var height = data.display[0], width = data.display[1], ratio = window.devicePixelRatio || 1;
    this.ratio = ratio;
    this.canvas.width = Math.round(width * ratio);
    this.canvas.height = Math.round(height * ratio);
    this.canvas.style.width = width + "px";
    this.canvas.style.height = height + "px";
    stage.appendChild(this.canvas);
    main.appendChild(stage);
    var side = element("div", "cb-side");
    this.status = element("div", "cb-status");
    this.readout = element("div", "cb-readout", "under the pointer: -");
    this.cls = element("div", "cb-cls");
    this.legend = element("div", "cb-legend");
    side.appendChild(this.status);
    side.appendChild(this.readout);
    side.appendChild(this.cls);
    side.appendChild(this.legend);
    side.appendChild(element("div", "cb-help",
      "Hover a token to see its interactions with every patch (it stays shown while the pointer reads values on " +
      "the image); click to pin it, drag across tokens for a span; drag a box on the image to colour the caption " +
      "by that box's interactions, click the image to clear it. Grey: special positions, not on the colour scale."));
    main.appendChild(side);
    root.appendChild(main);

    this.caption = element("div", "cb-caption");
    this.tokenNodes = [];
    this.tokens.forEach(function (token, index) {
      var node = element("span", "cb-token");
      node.setAttribute("data-token", String(index));
      node.tabIndex = 0;
      node.appendChild(element("span", "cb-label", token));
      node.appendChild(element("span", "cb-value", ""));
      if (self.special[index]) { node.classList.add("cb-special"); }
      self.tokenNodes.push(node);
      self.caption.appendChild(node);
    });
    root.appendChild(this.caption);
    this.captionNote = element("div", "cb-note");
    root.appendChild(this.captionNote);
    this.bindCaption();
    this.bindImage();
  };

  Explorer.prototype.bindCaption = function () {
    var self = this, anchor = null;
    function index(event) {
      var node = event.target.closest ? event.target.closest(".cb-token") : null;
      return node && self.caption.contains(node) ? parseInt(node.getAttribute("data-token"), 10) : null;
    }
    this.caption.addEventListener("mouseover", function (event) {
      var k = index(event);
      if (k === null) { return; }
      self.current.preview = anchor === null ? [k, k + 1] : [Math.min(anchor, k), Math.max(anchor, k) + 1];
      self.draw();
    });
    this.caption.addEventListener("mouseleave", function () {
      // back to the pinned span if there is one; else the last hovered token stays shown,
      // so that the pointer can go on to read its values on the image
      if (anchor !== null || !self.current.span) { return; }
      self.current.preview = null; self.draw();
    });
    this.caption.addEventListener("mousedown", function (event) {
      var k = index(event);
      if (k === null) { return; }
      event.preventDefault();
      anchor = k;
      self.current.preview = [k, k + 1];
      self.draw();
    });
    document.addEventListener("mouseup", function () {
      if (anchor === null) { return; }
      var span = self.current.preview;
      anchor = null;
      var same = self.current.span && span && self.current.span[0] === span[0] && self.current.span[1] === span[1];
      self.current.span = same ? null : span;  // a second click on the pinned span unpins it
      self.draw();
    });
    this.caption.addEventListener("focusin", function (event) {
      var k = index(event);
      if (k !== null) { self.current.preview = [k, k + 1]; self.draw(); }
    });
    this.caption.addEventListener("keydown", function (event) {
      var k = index(event);
      if (k !== null && (event.key === "Enter" || event.key === " ")) {
        event.preventDefault(); self.current.span = [k, k + 1]; self.draw();
      }
    });
  };

  Explorer.prototype.pointer = function (event) {
    var rect = this.canvas.getBoundingClientRect();
    var x = (event.clientX - rect.left) * this.data.display[1] / rect.width;
    var y = (event.clientY - rect.top) * this.data.display[0] / rect.height;
    return [Math.min(Math.max(x, 0), this.data.display[1]), Math.min(Math.max(y, 0), this.data.display[0])];
  };

  Explorer.prototype.bindImage = function () {
    var self = this, start = null;
    this.canvas.addEventListener("mousedown", function (event) {
      event.preventDefault();
      start = self.pointer(event);
    });
    this.canvas.addEventListener("mousemove", function (event) {
      var at = self.pointer(event);
      self.showReadout(at);
      if (start !== null) {
        self.current.dragging = [start[0], start[1], at[0], at[1]];
        self.draw();
      }
    });
    this.canvas.addEventListener("mouseleave", function () { self.readout.textContent = "under the pointer: -"; });
    document.addEventListener("mouseup", function (event) {
      if (start === null) { return; }
      var end = self.pointer(event), box = [Math.min(start[0], end[0]), Math.min(start[1], end[1]),
                                             Math.max(start[0], end[0]), Math.max(start[1], end[1])];
      start = null;
      self.current.dragging = null;
      // a click without a drag clears the box
      self.current.box = (box[2] - box[0] >= 2 && box[3] - box[1] >= 2) ? box : null;
      self.draw();
    });
  };

  /* ------------------------------------------------------------------ drawing */

  Explorer.prototype.scaleOf = function (view) {
    return view === "first-order" ? this.firstOrder.scale : this.views[view].scale;
  };

  Explorer.prototype.shownMap = function () {
    var view = this.current.view, span = this.current.preview || this.current.span;
    if (view === "first-order") { return {values: this.firstOrder.values, cls: null, span: null}; }
    if (!span) { return {values: null, cls: null, span: null}; }
    return {values: this.spanMap(view, span[0], span[1]), cls: this.spanCls(view, span[0], span[1]), span: span};
  };

  Explorer.prototype.colour = function (value, scale) {
    var t = Math.max(-1, Math.min(1, value / scale));
    var index = Math.round((t + 1) / 2 * (this.lut.length - 1));
    return {rgb: this.lut[index], alpha: Math.abs(t)};
  };

  Explorer.prototype.draw = function () {
    var data = this.data, context = this.canvas.getContext("2d");
    var height = data.display[0], width = data.display[1];
    context.setTransform(this.ratio, 0, 0, this.ratio, 0, 0);
    context.imageSmoothingEnabled = false;
    if (this.image.complete && this.image.naturalWidth) { context.drawImage(this.image, 0, 0, width, height); }
    var shown = this.shownMap(), scale = this.scaleOf(this.current.view);
    this.lastShown = shown;
    if (shown.values) {
      var rows = this.grid[0], cols = this.grid[1];
      for (var r = 0; r < rows; r++) {
        // patch edges as selection.upsample_map's partition: pixel x is in column floor(x * cols / width)
        var top = Math.ceil(r * height / rows), bottom = Math.ceil((r + 1) * height / rows);
        for (var c = 0; c < cols; c++) {
          var left = Math.ceil(c * width / cols), right = Math.ceil((c + 1) * width / cols);
          var colour = this.colour(shown.values[r * cols + c], scale);
          var alpha = this.current.opacity * colour.alpha;
          if (alpha <= 0) { continue; }
          context.fillStyle = "rgba(" + colour.rgb[0] + "," + colour.rgb[1] + "," + colour.rgb[2] + "," + alpha + ")";
          context.fillRect(left, top, right - left, bottom - top);
        }
      }
    }
    if (shown.values && data.contour) { this.drawContours(context, shown.values, scale); }
    var box = this.current.dragging || this.current.box;
    if (box) {
      context.lineWidth = 2;
      context.strokeStyle = data.boxColour;
      context.strokeRect(Math.min(box[0], box[2]), Math.min(box[1], box[3]), Math.abs(box[2] - box[0]),
                         Math.abs(box[3] - box[1]));
    }
    this.drawCaption(shown);
    this.drawSide(shown, scale);
    this.root.setAttribute("data-drawn", String((this.drawCount = (this.drawCount || 0) + 1)));
  };

  /* A dark outline around the patches beyond +-contour of the scale (as the figure's
   * contours): it stays visible over an object of the overlay's own colour. */
  Explorer.prototype.drawContours = function (context, values, scale) {
    var rows = this.grid[0], cols = this.grid[1], height = this.data.display[0], width = this.data.display[1];
    var level = this.data.contour, colours = this.data.contourColours;
    function sign(r, c) {
      if (r < 0 || c < 0 || r >= rows || c >= cols) { return 0; }
      var t = values[r * cols + c] / scale;
      return t >= level ? 1 : (t <= -level ? -1 : 0);
    }
    function x(c) { return Math.ceil(c * width / cols); }
    function y(r) { return Math.ceil(r * height / rows); }
    context.lineWidth = 1.5;
    [1, -1].forEach(function (side) {
      context.strokeStyle = side > 0 ? colours[1] : colours[0];
      context.beginPath();
      for (var r = 0; r < rows; r++) {
        for (var c = 0; c < cols; c++) {
          if (sign(r, c) !== side) { continue; }
          if (sign(r - 1, c) !== side) { context.moveTo(x(c), y(r)); context.lineTo(x(c + 1), y(r)); }
          if (sign(r + 1, c) !== side) { context.moveTo(x(c), y(r + 1)); context.lineTo(x(c + 1), y(r + 1)); }
          if (sign(r, c - 1) !== side) { context.moveTo(x(c), y(r)); context.lineTo(x(c), y(r + 1)); }
          if (sign(r, c + 1) !== side) { context.moveTo(x(c + 1), y(r)); context.lineTo(x(c + 1), y(r + 1)); }
        }
      }
      context.stroke();
    });
  };

  Explorer.prototype.drawCaption = function (shown) {
    var view = this.current.view, box = this.current.box, values = null, scale = 1, self = this;
    if (box && view !== "first-order") {
      values = this.boxMap(view, box[0], box[1], box[2], box[3]);
      scale = 0;
      values.forEach(function (value, index) { if (!self.special[index]) { scale = Math.max(scale, Math.abs(value)); } });
      scale = scale || 1;
    }
    this.captionValues = values;
    this.captionScale = values ? scale : null;
    var span = shown.span || this.current.span;
    this.tokenNodes.forEach(function (node, index) {
      var value = values ? values[index] : null;
      var inSpan = span && index >= span[0] && index < span[1];
      node.classList.toggle("cb-selected", !!inSpan);
      node.classList.toggle("cb-pinned", !!(self.current.span && index >= self.current.span[0] &&
                                                index < self.current.span[1]));
      node.querySelector(".cb-value").textContent = value === null ? "" : format(value);
      if (value === null) { node.removeAttribute("data-value"); } else { node.setAttribute("data-value", String(value)); }
      if (value === null || self.special[index]) {
        node.style.backgroundColor = "";
        node.style.color = "";
      } else {
        // as the figure's caption: the colour map's colour itself (visualization.colour_of)
        var rgb = self.colour(value, scale).rgb;
        node.style.backgroundColor = "rgb(" + rgb.join(",") + ")";
        node.style.color = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2] < 110 ? "#fff" : "";
      }
    });
    if (view === "first-order") {
      this.captionNote.textContent = "The first-order map is the same for every token and has no caption side here.";
    } else if (values) {
      this.captionNote.textContent = "Caption coloured by the box's interactions (" + this.views[view].units +
        "; its own scale ±" + format(scale).replace("+", "") + "); grey tokens are special positions, not on it.";
    } else {
      this.captionNote.textContent = "Drag a box on the image to colour the caption by its interactions.";
    }
  };

  Explorer.prototype.drawSide = function (shown, scale) {
    var view = this.current.view;
    var units = view === "first-order" ? this.firstOrder.units : this.views[view].units;
    if (view === "first-order") {
      this.status.textContent = this.firstOrder.title + ": the first-order map of the whole caption";
    } else if (shown.span) {
      var words = this.tokens.slice(shown.span[0], shown.span[1]).join(" ");
      var rows = shown.span[1] - shown.span[0] === 1 ? "token " + shown.span[0]
        : "tokens " + shown.span[0] + " to " + (shown.span[1] - 1);
      this.status.textContent = view + ': "' + words + '" (' + rows + ") -> image";
    } else {
      this.status.textContent = view + ": hover a token to see its map";
    }
    this.cls.textContent = shown.cls === null || shown.cls === undefined ? "" :
      "CLS (not on the colour scale): " + format(shown.cls);
    this.legend.textContent = "";
    var bar = element("canvas", "cb-bar");
    bar.width = 200; bar.height = 12;
    var context = bar.getContext("2d");
    for (var x = 0; x < bar.width; x++) {
      var colour = this.lut[Math.round(x / (bar.width - 1) * (this.lut.length - 1))];
      context.fillStyle = "rgb(" + colour.join(",") + ")";
      context.fillRect(x, 0, 1, bar.height);
    }
    this.legend.appendChild(bar);
    var ticks = element("div", "cb-ticks");
    ticks.appendChild(element("span", null, format(-scale)));
    ticks.appendChild(element("span", null, "0"));
    ticks.appendChild(element("span", null, format(scale)));
    this.legend.appendChild(ticks);
    this.legend.appendChild(element("div", "cb-units", "image colour scale ±" + format(scale).replace("+", "") + " (" +
                                    units + "); beyond it colours saturate"));
  };

  Explorer.prototype.showReadout = function (at) {
    var shown = this.lastShown || this.shownMap();
    var column = Math.min(this.grid[1] - 1, Math.floor(at[0] * this.grid[1] / this.data.display[1]));
    var row = Math.min(this.grid[0] - 1, Math.floor(at[1] * this.grid[0] / this.data.display[0]));
    var units = this.current.view === "first-order" ? this.firstOrder.units : this.views[this.current.view].units;
    var value = shown.values ? shown.values[row * this.grid[1] + column] : null;
    this.readout.setAttribute("data-patch", String(row * this.grid[1] + column));
    this.readout.setAttribute("data-value", value === null ? "" : String(value));
    this.readout.textContent = "under the pointer: patch (row " + row + ", column " + column + ")" +
      (value === null ? "" : " = " + format(value) + " " + units);
  };

  /* ------------------------------------------------------------------ API */

  Explorer.prototype.show = function (options) {
    options = options || {};
    if (options.method !== undefined) {
      if (options.method !== "first-order" || !this.firstOrder) { this.checkMethod(options.method); }
      this.current.view = options.method;
      this.select.value = options.method;
    }
    if (options.span !== undefined) {
      if (options.span !== null) { this.checkSpan(options.span[0], options.span[1]); }
      this.current.span = options.span ? options.span.slice() : null;
      this.current.preview = null;
    }
    if (options.box !== undefined) {
      if (options.box !== null) { this.boxWeights(options.box[0], options.box[1], options.box[2], options.box[3]); }
      this.current.box = options.box ? options.box.slice() : null;
    }
    if (options.opacity !== undefined) { this.current.opacity = options.opacity; this.opacity.value = options.opacity; }
    this.draw();
    return this.state();
  };

  Explorer.prototype.state = function () {
    var shown = this.lastShown || this.shownMap();
    return {method: this.current.view, span: shown.span, pinned: this.current.span, box: this.current.box,
            opacity: this.current.opacity, shown: shown.values ? shown.values.slice() : null, cls: shown.cls,
            caption: this.captionValues ? this.captionValues.slice() : null, captionScale: this.captionScale,
            scale: this.scaleOf(this.current.view)};
  };

  Explorer.prototype.api = function () {
    var self = this;
    return {
      id: this.id, methods: this.methods.slice(), tokens: this.tokens.slice(), grid: this.grid.slice(),
      imageSize: this.data.display.slice(), hasCls: this.data.hasCls,
      firstOrder: this.firstOrder ? {title: this.firstOrder.title, units: this.firstOrder.units,
                                     map: this.firstOrder.values.slice()} : null,
      units: this.methods.reduce(function (all, name) { all[name] = self.views[name].units; return all; }, {}),
      spanMap: function (method, start, stop) { return self.spanMap(method, start, stop); },
      boxMap: function (method, x0, y0, x1, y1) { return self.boxMap(method, x0, y0, x1, y1); },
      show: function (options) { return self.show(options); },
      state: function () { return self.state(); },
      element: this.root
    };
  };

  window.CaptumBilinearExplorer = {
    mount: function (id) {
      var root = document.getElementById(id), source = document.getElementById(id + "-data");
      if (!root || !source) { throw new Error("captum-bilinear explorer: no element " + id); }
      var explorer = new Explorer(root, JSON.parse(source.textContent));
      var api = explorer.api();
      window.captumBilinearExplorers = window.captumBilinearExplorers || {};
      window.captumBilinearExplorers[id] = api;
      if (!window.captumBilinear) {
        window.captumBilinear = api;
        if (window.location.hash.length > 1) { explorer.applyAddress(window.location.hash.slice(1)); }
      }
      return api;
    }
  };
})();
