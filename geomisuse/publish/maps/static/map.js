/* geomisuse outreach map: builds the map's layers from the page's JSON data block.
 *
 * Every text in that block was escaped in Python (geomisuse.escaping.safe_text) before it was
 * written, so it is inserted here as ready-made HTML and never evaluated. Numbers arrive as
 * formatted text. Nothing here reads text from the URL into HTML: the "#ward=CODE" hash is
 * only compared with the ward codes.
 *
 * Ward geometry is shared by every ward layer (choropleths, clusters, hot spots, gaps), and a
 * layer is only built the first time it is shown, so the page opens with just its default
 * layers drawn.
 */
(function () {
  "use strict";
  var G = {specs: {}, layers: {}, order: [], visible: {}, built: {}};
  window.geomisuse = G;

  var PANES = [["gm-fill", 350], ["gm-catchments", 420], ["gm-estates", 430], ["gm-outline", 440],
               ["gm-highlight", 450]];

  G.init = function (map, dataId) {
    G.map = map;
    G.data = JSON.parse(document.getElementById(dataId).textContent);
    if (G.data.bounds) { map.fitBounds(G.data.bounds, {animate: false}); }
    PANES.forEach(function (p) { map.createPane(p[0]).style.zIndex = p[1]; });
    map.getPane("gm-catchments").style.pointerEvents = "none";
    map.getPane("gm-highlight").style.pointerEvents = "none";
    G.legend = L.control({position: "bottomright"});
    G.legend.onAdd = function () {
      var div = L.DomUtil.create("div", "gm-legend");
      L.DomEvent.disableClickPropagation(div);
      L.DomEvent.disableScrollPropagation(div);
      return div;
    };
    G.legend.addTo(map);
    G.fullscreen = L.control({position: "topleft"});
    G.fullscreen.onAdd = function () {
      var a = L.DomUtil.create("a", "gm-fullscreen leaflet-bar");
      a.href = "#";
      a.title = "Full screen";
      a.setAttribute("role", "button");
      a.setAttribute("aria-label", "Full screen");
      a.innerHTML = '<svg viewBox="0 0 16 16" width="16" height="16" aria-hidden="true">' +
        '<path d="M1 6V1h5M10 1h5v5M15 10v5h-5M6 15H1v-5" fill="none" stroke="#000" stroke-width="2"/></svg>';
      L.DomEvent.on(a, "click", function (e) {
        L.DomEvent.preventDefault(e);
        L.DomEvent.stopPropagation(e);
        G.toggleFullscreen();
      });
      return a;
    };
    G.fullscreen.addTo(map);
    document.addEventListener("fullscreenchange", function () { map.invalidateSize(); });
  };

  G.toggleFullscreen = function () {
    var box = G.map.getContainer();
    if (document.fullscreenElement) {
      document.exitFullscreen();
    } else if (box.requestFullscreen) {
      box.requestFullscreen().catch(function () { /* refused (e.g. in an iframe) */ });
    }
  };

  /* ---- ward tooltips ---------------------------------------------------------------------- */

  G.wardTip = function (i, measure, withLink) {
    var W = G.data.ward;
    var html = '<div class="gm-tip"><div class="gm-tip-head"><b>' + W.name[i] + "</b> " +
      '<span class="gm-code">' + W.code[i] + "</span></div>";
    if (W.borough) { html += "<div>Borough: " + W.borough[i] + "</div>"; }
    if (W.pop) { html += "<div>Residents: " + W.pop[i] + "</div>"; }
    if (W.measures.length) {
      var hasLisa = W.measures.some(function (m) { return m.lisa; });
      var hasGi = W.measures.some(function (m) { return m.gi; });
      var hasEhsa = W.measures.some(function (m) { return m.ehsa; });
      html += '<table class="gm-table"><tr><th></th><th>Count</th><th>Rate per 1,000</th>' +
        (hasLisa ? "<th>Cluster (LISA)</th>" : "") + (hasGi ? "<th>Gi*</th>" : "") +
        (hasEhsa ? "<th>Emerging</th>" : "") + "</tr>";
      W.measures.forEach(function (m) {
        html += "<tr" + (m.key === measure ? ' class="gm-active"' : "") + '><td>' + m.label + "</td>" +
          '<td class="gm-num" data-field="' + m.key + '_count">' + m.count[i] + "</td>" +
          '<td class="gm-num" data-field="' + m.key + '_rate">' + m.rate[i] + "</td>" +
          (hasLisa ? "<td>" + (m.lisa ? m.lisa[i] : "") + "</td>" : "") +
          (hasGi ? "<td>" + (m.gi ? m.gi[i] : "") + "</td>" : "") +
          (hasEhsa ? "<td>" + (m.ehsa ? m.ehsa[i] : "") + "</td>" : "") + "</tr>";
      });
      html += "</table>";
    }
    W.nearest.forEach(function (n) {
      if (n.text[i]) { html += '<div class="gm-near">' + n.label + ": " + n.text[i] + "</div>"; }
    });
    if (W.gap && W.gap.text[i]) {
      html += '<div class="' + (W.gap.flag[i] ? "gm-gap" : "gm-nogap") + '">' + W.gap.text[i] + "</div>";
    }
    if (W.note) { html += '<div class="gm-note">' + W.note + "</div>"; }
    if (withLink && W.page) {
      html += '<div class="gm-brief-link"><a href="' + W.page[i] + '">Open the ward briefing</a></div>';
    }
    return html + "</div>";
  };

  function bindWard(layer, i, measure) {
    layer.bindTooltip(function () { return G.wardTip(i, measure); },
                      {sticky: true, className: "gm-tooltip", direction: "auto", offset: [12, 0]});
    layer.on("click", function (e) { G.openWard(i, e.latlng, measure); });
  }

  G.openWard = function (i, latlng, measure) {
    var W = G.data.ward;
    G.popup = G.popup || L.popup({maxWidth: 420, className: "gm-popup", autoPan: true});
    // A phone is narrower than the popup would like to be.
    G.popup.options.maxWidth = Math.max(200, Math.min(420, G.map.getSize().x - 60));
    // Pan the popup clear of the title box and the panels on the right before it opens.
    var pad = G.panelPadding();
    G.popup.options.autoPanPaddingTopLeft = pad.topLeft;
    G.popup.options.autoPanPaddingBottomRight = pad.bottomRight;
    G.popup.setLatLng(latlng || [W.lat[i], W.lon[i]])
      .setContent(G.wardTip(i, measure || G.activeMeasure(), true))
      .openOn(G.map);
    G.popupWard = i;
  };

  G.activeMeasure = function () {
    for (var k = G.order.length - 1; k >= 0; k--) {
      var spec = G.specs[G.order[k]];
      if (G.visible[spec.id] && spec.measure && spec.group === "ward") { return spec.measure; }
    }
    return G.data.defaultMeasure;
  };

  /* ---- layer builders --------------------------------------------------------------------- */

  function wardFill(spec) {
    var features = G.data.wards.features;
    return L.geoJSON({type: "FeatureCollection", features: features}, {
      pane: "gm-fill",
      style: function (f) {
        var c = spec.cls[f.properties.i];
        // With a borough chosen in the filter, the other boroughs' wards fade.
        var faded = G.boroughWards && !G.boroughWards[f.properties.i];
        return {fillColor: c < 0 ? spec.missing : spec.colours[c],
                fillOpacity: faded ? 0.12 : (spec.opacity || 0.75),
                color: "#555", weight: 0.6, opacity: faded ? 0.3 : 0.9};
      },
      onEachFeature: function (f, layer) { bindWard(layer, f.properties.i, spec.measure); }
    });
  }

  function wardOutline(spec) {
    var keep = {};
    spec.wards.forEach(function (i) { keep[i] = true; });
    return L.geoJSON(G.data.wards, {
      pane: "gm-outline",
      filter: function (f) { return keep[f.properties.i] === true; },
      style: function () {
        return {color: spec.colour, weight: 3.5, dashArray: "7 4", fill: true, fillOpacity: 0, opacity: 1};
      },
      onEachFeature: function (f, layer) { bindWard(layer, f.properties.i, spec.measure); }
    });
  }

  function iconHtml(type) {
    return '<div class="gm-icon gm-' + type.shape + '" style="background:' + type.colour + '">' +
      type.glyph + "</div>";
  }

  function markers(spec) {
    var group = (spec.cluster && L.markerClusterGroup)
      ? L.markerClusterGroup({showCoverageOnHover: false, maxClusterRadius: 40, chunkedLoading: true})
      : L.featureGroup();
    var icons = spec.types.map(function (t) {
      return L.divIcon({html: iconHtml(t), className: "gm-divicon", iconSize: [t.size, t.size],
                        iconAnchor: [t.size / 2, t.size / 2], tooltipAnchor: [0, -t.size / 2]});
    });
    spec.items.forEach(function (p) {
      var m = L.marker([p[0], p[1]], {icon: icons[p[2]], riseOnHover: true, keyboard: false});
      m.bindTooltip(p[3], {className: "gm-tooltip", direction: "top"});
      if (p[4]) { m.bindPopup(p[4], {className: "gm-tooltip"}); }
      group.addLayer(m);
    });
    return group;
  }

  function circles(spec) {
    var group = L.featureGroup();
    spec.items.forEach(function (p) {
      L.circle([p[0], p[1]], {radius: spec.radius, pane: "gm-catchments", interactive: false,
                              color: spec.colour, weight: 1.5, dashArray: "4 3", fillColor: spec.colour,
                              fillOpacity: 0.06}).addTo(group);
    });
    return group;
  }

  /* Network isochrones: where a walk of the threshold reaches, drawn under the markers. */
  function areas(spec) {
    return L.geoJSON(spec.geojson, {
      pane: "gm-catchments", interactive: false,
      style: function () {
        return {color: spec.colour, weight: 1.5, dashArray: "4 3", fillColor: spec.colour,
                fillOpacity: 0.06};
      }
    });
  }

  function polygons(spec) {
    return L.geoJSON(spec.geojson, {
      pane: "gm-estates",
      style: function () {
        return {color: spec.colour, weight: 2, fillColor: spec.colour, fillOpacity: 0.3};
      },
      pointToLayer: function (f, latlng) {
        return L.circleMarker(latlng, {pane: "gm-estates", radius: 7, color: spec.colour, weight: 2,
                                       fillColor: spec.colour, fillOpacity: 0.5});
      },
      onEachFeature: function (f, layer) {
        layer.bindTooltip(f.properties.t, {className: "gm-tooltip", sticky: true});
      }
    });
  }

  function heat(spec) {
    if (!L.heatLayer) { return L.layerGroup(); }
    var pts = [], d = spec.points;
    for (var k = 0; k + 2 < d.length; k += 3) { pts.push([d[k], d[k + 1], d[k + 2]]); }
    return L.heatLayer(pts, {radius: spec.radius, blur: spec.blur, max: spec.max, minOpacity: 0.25,
                             maxZoom: spec.maxZoom});
  }

  function context(spec) {
    return L.geoJSON(spec.geojson, {
      pane: "gm-fill",
      style: function () {
        return {color: "#777", weight: 0.6, fillColor: spec.colour, fillOpacity: 0.35, opacity: 0.8};
      },
      onEachFeature: function (f, layer) {
        layer.bindTooltip(f.properties.t, {className: "gm-tooltip", sticky: true});
      }
    });
  }

  var BUILDERS = {fill: wardFill, outline: wardOutline, markers: markers, circles: circles,
                  areas: areas, polygons: polygons, heat: heat, context: context};

  /* ---- borough filter (studies of many boroughs) ------------------------------------------- */

  G.boroughControl = function () {
    var boroughs = G.data.boroughs || [];
    if (!boroughs.length) { return; }
    var control = L.control({position: "topleft"});
    control.onAdd = function () {
      var box = L.DomUtil.create("div", "gm-borough leaflet-bar");
      var select = L.DomUtil.create("select", "", box);
      select.setAttribute("aria-label", "Borough");
      var html = '<option value="">All boroughs</option>';
      boroughs.forEach(function (b, k) { html += '<option value="' + k + '">' + b.name + "</option>"; });
      select.innerHTML = html;
      L.DomEvent.disableClickPropagation(box);
      L.DomEvent.on(select, "change", function () { G.chooseBorough(select.value); });
      return box;
    };
    control.addTo(G.map);
  };

  G.chooseBorough = function (value) {
    var b = value === "" ? null : G.data.boroughs[Number(value)];
    G.boroughWards = null;
    if (b) {
      G.boroughWards = {};
      b.wards.forEach(function (i) { G.boroughWards[i] = true; });
      G.map.fitBounds(b.bounds, {animate: false});
    } else if (G.data.bounds) {
      G.map.fitBounds(G.data.bounds, {animate: false});
    }
    Object.keys(G.built).forEach(function (id) {
      if (G.specs[id].kind === "fill") { G.built[id].setStyle(G.built[id].options.style); }
    });
  };

  /* A layer for the layer control; its contents are built the first time it is shown. */
  G.layer = function (id) {
    var spec = G.data.layers[id];
    spec.id = id;
    G.specs[id] = spec;
    G.order.push(id);
    var group = L.layerGroup();
    var built = false;
    group.on("add", function () {
      if (!built) { built = true; G.built[id] = BUILDERS[spec.kind](spec); group.addLayer(G.built[id]); }
      G.visible[id] = true;
      G.updateLegend();
    });
    group.on("remove", function () {
      G.visible[id] = false;
      G.updateLegend();
    });
    G.layers[id] = group;
    return group;
  };

  /* ---- legend ----------------------------------------------------------------------------- */

  function swatch(item) {
    var colour = item[0], kind = item[2] || "box";
    if (!colour) { return ""; }
    if (kind === "gradient") {
      return '<span class="gm-swatch gm-swatch-gradient" style="background:' + colour + '"></span>';
    }
    if (kind === "icon") {
      return '<span class="gm-swatch-icon">' + iconHtml(item[3]) + "</span>";
    }
    return '<span class="gm-swatch gm-swatch-' + kind + '" style="' +
      (kind === "line" ? "border-color:" : "background:") + colour + '"></span>';
  }

  G.updateLegend = function () {
    var box = G.legend && G.legend.getContainer();
    if (!box) { return; }
    var html = '<button type="button" class="gm-legend-toggle" id="gm-legend-toggle" aria-expanded="' +
      (G.legendOpen ? "true" : "false") + '">' + (G.legendOpen ? "Key ▾" : "Key ▴") + "</button>" +
      '<div class="gm-legend-body"' + (G.legendOpen ? "" : " hidden") + ">";
    var blocks = 0;
    var ids = G.order.filter(function (id) { return G.specs[id].group === "ward"; })
      .concat(G.order.filter(function (id) { return G.specs[id].group !== "ward"; }));
    ids.forEach(function (id) {
      var spec = G.specs[id];
      if (!G.visible[id] || !spec.legend) { return; }
      blocks += 1;
      html += '<div class="gm-legend-block" data-layer="' + id + '"><div class="gm-legend-title">' +
        spec.legend.title + "</div>";
      spec.legend.items.forEach(function (item) {
        html += '<div class="gm-legend-item">' + swatch(item) + " " + item[1] + "</div>";
      });
      html += "</div>";
    });
    box.innerHTML = html + "</div>";
    box.style.display = blocks ? "" : "none";
    document.getElementById("gm-legend-toggle").addEventListener("click", function () {
      G.legendOpen = !G.legendOpen;
      G.updateLegend();
    });
  };

  /* ---- link to a ward: map.html#ward=E05000001 ---------------------------------------------- */

  G.applyHash = function () {
    var match = /(?:^#|&)ward=([^&]*)/.exec(window.location.hash);
    if (!match) { return; }
    var code;
    try { code = decodeURIComponent(match[1]); } catch (err) { return; }
    var i = G.data.ward.code.indexOf(code);
    if (i < 0) { return; }
    G.restorePanels();
    var feature = G.data.wards.features[i];
    var pad = G.panelPadding();
    G.map.fitBounds(L.geoJSON(feature).getBounds(), {maxZoom: 15, paddingTopLeft: pad.topLeft,
                                                     paddingBottomRight: pad.bottomRight, animate: false});
    if (G.highlight) { G.map.removeLayer(G.highlight); }
    G.highlight = L.geoJSON(feature, {pane: "gm-highlight", interactive: false,
      style: function () { return {color: "#00e5ff", weight: 5, fill: false, opacity: 1}; }}).addTo(G.map);
    G.openWard(i, null, G.activeMeasure());
    G.selectedWard = code;
  };

  /* ---- controls: layer choice, search, labels, panels that step aside ------------------------- */

  function small() { return window.innerWidth < 700 || window.innerHeight < 760; }

  /* One panel: a single choice of ward colouring (a select, so two can never blend) and
   * check boxes for the overlays; collapsed to a button on small screens. */
  G.buildControls = function () {
    var Panel = L.Control.extend({
      onAdd: function () {
        var box = L.DomUtil.create("div", "gm-layers leaflet-bar");
        box.id = "gm-layers";
        L.DomEvent.disableClickPropagation(box);
        L.DomEvent.disableScrollPropagation(box);
        return box;
      }
    });
    G.control = new Panel({position: "topright"}).addTo(G.map);
    var box = G.control.getContainer();
    var html = '<button type="button" class="gm-layers-toggle" id="gm-layers-toggle" aria-expanded="true">' +
      "Layers</button><div class=\"gm-layers-body\" id=\"gm-layers-body\">" +
      '<label class="gm-layers-title" for="gm-ward-layer">Colour wards by</label>' +
      '<select id="gm-ward-layer"><option value="">nothing (outlines only)</option>';
    var groups = {}, groupOrder = [];
    G.order.forEach(function (id) {
      var spec = G.specs[id];
      if (spec.group !== "ward") { return; }
      var g = spec.family || "Ward layers";
      if (!groups[g]) { groups[g] = []; groupOrder.push(g); }
      groups[g].push(id);
    });
    groupOrder.forEach(function (g) {
      html += '<optgroup label="' + g + '">';
      groups[g].forEach(function (id) { html += '<option value="' + id + '">' + G.specs[id].name + "</option>"; });
      html += "</optgroup>";
    });
    html += '</select><div class="gm-layers-title">Show on the map</div>';
    G.order.forEach(function (id) {
      if (G.specs[id].group === "ward") { return; }
      html += '<label class="gm-overlay"><input type="checkbox" data-layer="' + id + '"> ' +
        G.specs[id].name + "</label>";
    });
    html += '<label class="gm-overlay"><input type="checkbox" data-layer="labels"> Ward names</label></div>';
    box.innerHTML = html;

    G.labels = G.wardLabels();
    G.showWardLayer = function (id) {
      G.order.forEach(function (other) {
        if (G.specs[other].group === "ward" && String(other) !== String(id) && G.map.hasLayer(G.layers[other])) {
          G.map.removeLayer(G.layers[other]);
        }
      });
      if (id !== "" && id !== null && G.layers[id] && !G.map.hasLayer(G.layers[id])) { G.layers[id].addTo(G.map); }
      document.getElementById("gm-ward-layer").value = id === null ? "" : String(id);
      G.restorePanels();
      if (G.popup && G.map.hasLayer(G.popup) && G.popupWard !== undefined) {
        G.popup.setContent(G.wardTip(G.popupWard, G.activeMeasure(), true));
      }
    };
    G.setOverlay = function (id, on) {
      var layer = id === "labels" ? G.labels : G.layers[id];
      if (on && !G.map.hasLayer(layer)) { layer.addTo(G.map); }
      if (!on && G.map.hasLayer(layer)) { G.map.removeLayer(layer); }
      var input = box.querySelector('input[data-layer="' + id + '"]');
      if (input) { input.checked = on; }
    };
    var select = document.getElementById("gm-ward-layer");
    select.addEventListener("change", function () { G.showWardLayer(select.value); });
    Array.prototype.forEach.call(box.querySelectorAll("input[data-layer]"), function (input) {
      input.addEventListener("change", function () { G.setOverlay(input.getAttribute("data-layer"), input.checked); });
    });
    var first = null;
    G.order.forEach(function (id) {
      var spec = G.specs[id];
      if (spec.group === "ward") { if (spec.show && first === null) { first = id; } }
      else if (spec.show) { G.setOverlay(id, true); }
    });
    G.showWardLayer(first);
    G.setOverlay("labels", G.data.ward.code.length <= 60);

    var toggle = document.getElementById("gm-layers-toggle"), body = document.getElementById("gm-layers-body");
    G.setPanelOpen = function (open) {
      body.hidden = !open;
      toggle.setAttribute("aria-expanded", open ? "true" : "false");
      toggle.textContent = open ? "Layers ▴" : "Layers ▾";
    };
    toggle.addEventListener("click", function () { G.setPanelOpen(body.hidden); });
    G.setPanelOpen(!small());
  };

  /* Ward names at the label points, shown only where a ward is wide enough on screen for its name. */
  G.wardLabels = function () {
    var W = G.data.ward, group = L.layerGroup(), markers = [];
    W.code.forEach(function (c, i) {
      var m = L.marker([W.lat[i], W.lon[i]], {interactive: false, keyboard: false,
        icon: L.divIcon({className: "gm-label", html: "<span>" + W.name[i] + "</span>", iconSize: null})});
      markers.push(m);
    });
    var widths = G.data.wards.features.map(function (f) {
      var b = L.geoJSON(f).getBounds();
      return b.isValid() ? b : null;
    });
    function refresh() {
      if (!G.map.hasLayer(group)) { return; }
      markers.forEach(function (m, i) {
        var b = widths[i], wide = false;
        if (b) {
          var a = G.map.latLngToContainerPoint(b.getSouthWest()), z = G.map.latLngToContainerPoint(b.getNorthEast());
          wide = Math.abs(z.x - a.x) >= 70 && Math.abs(a.y - z.y) >= 24;
        }
        if (wide && !group.hasLayer(m)) { group.addLayer(m); }
        if (!wide && group.hasLayer(m)) { group.removeLayer(m); }
      });
    }
    group.on("add", refresh);
    G.map.on("zoomend", refresh);
    return group;
  };

  /* Names and codes arrive escaped for HTML: the text a reader sees and types. */
  function plainText(html) {
    var d = document.createElement("div");
    d.innerHTML = html;
    return d.textContent || "";
  }

  function norm(s) {
    return plainText(s).toLowerCase().replace(/[^a-z0-9]+/g, " ").trim();
  }

  G.findWard = function (text) {
    var W = G.data.ward, q = norm(text);
    if (!q) { return -1; }
    var k, exact = -1, prefix = -1, part = -1;
    for (k = 0; k < W.code.length; k++) {
      var name = norm(W.name[k]), code = norm(W.code[k]);
      if (q === code || q === name || q === norm(W.name[k] + " " + W.code[k])) { exact = k; break; }
      if (prefix < 0 && name.indexOf(q) === 0) { prefix = k; }
      if (part < 0 && name.indexOf(q) >= 0) { part = k; }
    }
    return exact >= 0 ? exact : (prefix >= 0 ? prefix : part);
  };

  G.buildSearch = function () {
    var form = document.getElementById("gm-search");
    if (!form) { return; }
    var list = document.getElementById("gm-ward-list"), W = G.data.ward, choices = {};
    W.code.forEach(function (c, i) {
      var o = document.createElement("option");
      o.value = plainText(W.name[i] + " " + c);
      choices[o.value] = true;
      list.appendChild(o);
    });
    var input = document.getElementById("gm-search-input"), msg = document.getElementById("gm-search-msg");
    function go(e) {
      if (e) { e.preventDefault(); }
      var i = G.findWard(input.value);
      msg.textContent = i < 0 && input.value ? "no ward matches" : "";
      if (i < 0) { return; }
      var hash = "#ward=" + encodeURIComponent(plainText(W.code[i]));
      if (window.location.hash === hash) { G.applyHash(); } else { window.location.hash = hash; }
    }
    // Enter submits; a ward picked from the list (no Enter) is taken as it arrives. Listening
    // to "change" as well searched twice on every Enter.
    form.addEventListener("submit", go);
    input.addEventListener("input", function () { if (choices[input.value]) { go(); } });
    L.DomEvent.disableClickPropagation(form);
  };

  G.buildTitleToggle = function () {
    var button = document.getElementById("gm-title-toggle"), details = document.getElementById("gm-details");
    if (!button || !details) { return; }
    function set(open) {
      details.hidden = !open;
      button.textContent = open ? "–" : "+";
      button.setAttribute("aria-expanded", open ? "true" : "false");
    }
    button.addEventListener("click", function () { set(details.hidden); });
    set(!small());
  };

  function panels() {
    var out = [];
    ["gm-title", "gm-layers"].forEach(function (id) {
      var el = document.getElementById(id);
      if (el) { out.push(el); }
    });
    var legend = G.legend && G.legend.getContainer();
    if (legend) { out.push(legend); }
    return out;
  }

  /* Padding (pixels) that keeps a ward or popup clear of the title box and the panels. */
  G.panelPadding = function () {
    var box = G.map.getContainer().getBoundingClientRect(), top = 10, right = 10;
    panels().forEach(function (el) {
      if (el.getClientRects().length === 0) { return; }  // folded away or not on this page
      var r = el.getBoundingClientRect();
      if (r.width === 0) { return; }
      // The title box sits over the top; the layer panel and the key over the right side.
      if (el.id === "gm-title") { top = Math.max(top, r.bottom - box.top + 10); }
      else { right = Math.max(right, box.right - r.left + 10); }
    });
    // Never pad away more than half the map: on a phone the panels are folded anyway.
    return {topLeft: [10, Math.min(top, box.height / 2)], bottomRight: [Math.min(right, box.width / 2), 10]};
  };

  function overlaps(a, b) {
    return a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
  }

  /* A panel over an open tooltip or popup steps aside (is hidden) until it closes. */
  G.stepAside = function (el) {
    if (!el) { return; }
    var r = el.getBoundingClientRect();
    panels().forEach(function (p) {
      if (p.classList.contains("gm-aside")) { return; }
      if (overlaps(r, p.getBoundingClientRect())) { p.classList.add("gm-aside"); }
    });
  };

  G.restorePanels = function () {
    panels().forEach(function (p) { p.classList.remove("gm-aside"); });
  };

  G.watchPanels = function () {
    var openTip = null;
    G.map.on("tooltipopen", function (e) { openTip = e.tooltip; G.stepAside(e.tooltip.getElement()); });
    G.map.on("tooltipclose", function () {
      openTip = null;
      G.restorePanels();
      if (G.map.hasLayer(G.popup || L.layerGroup())) { G.stepAside(G.popup.getElement()); }
    });
    G.map.on("mousemove", function () {
      if (openTip && openTip.getElement()) { G.stepAside(openTip.getElement()); }
    });
    G.map.on("popupopen", function (e) { G.stepAside(e.popup.getElement()); });
    G.map.on("moveend", function () {
      if (G.popup && G.map.hasLayer(G.popup)) { G.restorePanels(); G.stepAside(G.popup.getElement()); }
    });
    G.map.on("popupclose", function () { G.restorePanels(); });
  };

  G.watchTiles = function () {
    var note = document.getElementById("gm-tiles-note");
    G.map.eachLayer(function (layer) {
      if (layer instanceof L.TileLayer) {
        layer.on("tileerror", function () { if (note) { note.hidden = false; } });
      }
    });
  };

  G.ready = function () {
    G.boroughControl();
    G.legendOpen = !(window.innerWidth < 700);
    G.buildControls();
    G.buildSearch();
    G.buildTitleToggle();
    G.watchPanels();
    G.watchTiles();
    G.updateLegend();
    if (G.data.bounds) {
      var pad = G.panelPadding();
      G.map.fitBounds(G.data.bounds, {paddingTopLeft: pad.topLeft, paddingBottomRight: pad.bottomRight,
                                       animate: false});
    }
    G.applyHash();
    window.addEventListener("hashchange", G.applyHash);
    window.requestAnimationFrame(function () {
      window.requestAnimationFrame(function () { G.renderedAt = window.performance.now(); });
    });
  };
})();
