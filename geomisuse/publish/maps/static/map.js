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
  var G = {specs: {}, layers: {}, order: [], visible: {}};
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

  G.wardTip = function (i, measure) {
    var W = G.data.ward;
    var html = '<div class="gm-tip"><div class="gm-tip-head"><b>' + W.name[i] + "</b> " +
      '<span class="gm-code">' + W.code[i] + "</span></div>";
    if (W.pop) { html += "<div>Residents: " + W.pop[i] + "</div>"; }
    if (W.measures.length) {
      var hasLisa = W.measures.some(function (m) { return m.lisa; });
      var hasGi = W.measures.some(function (m) { return m.gi; });
      html += '<table class="gm-table"><tr><th></th><th>Count</th><th>Rate per 1,000</th>' +
        (hasLisa ? "<th>Cluster (LISA)</th>" : "") + (hasGi ? "<th>Gi*</th>" : "") + "</tr>";
      W.measures.forEach(function (m) {
        html += "<tr" + (m.key === measure ? ' class="gm-active"' : "") + '><td>' + m.label + "</td>" +
          '<td class="gm-num" data-field="' + m.key + '_count">' + m.count[i] + "</td>" +
          '<td class="gm-num" data-field="' + m.key + '_rate">' + m.rate[i] + "</td>" +
          (hasLisa ? "<td>" + (m.lisa ? m.lisa[i] : "") + "</td>" : "") +
          (hasGi ? "<td>" + (m.gi ? m.gi[i] : "") + "</td>" : "") + "</tr>";
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
    return html + "</div>";
  };

  function bindWard(layer, i, measure) {
    layer.bindTooltip(function () { return G.wardTip(i, measure); },
                      {sticky: true, className: "gm-tooltip", direction: "auto", offset: [12, 0]});
    layer.on("click", function (e) { G.openWard(i, e.latlng, measure); });
  }

  G.openWard = function (i, latlng, measure) {
    var W = G.data.ward;
    G.popup = G.popup || L.popup({maxWidth: 420, className: "gm-popup"});
    G.popup.setLatLng(latlng || [W.lat[i], W.lon[i]])
      .setContent(G.wardTip(i, measure || G.activeMeasure()))
      .openOn(G.map);
  };

  G.activeMeasure = function () {
    for (var k = G.order.length - 1; k >= 0; k--) {
      var spec = G.specs[G.order[k]];
      if (G.visible[spec.id] && spec.measure) { return spec.measure; }
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
        return {fillColor: c < 0 ? spec.missing : spec.colours[c], fillOpacity: spec.opacity || 0.75,
                color: "#555", weight: 0.6, opacity: 0.9};
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

  var BUILDERS = {fill: wardFill, outline: wardOutline, markers: markers, circles: circles,
                  areas: areas, polygons: polygons, heat: heat};

  /* A layer for the layer control; its contents are built the first time it is shown. */
  G.layer = function (id) {
    var spec = G.data.layers[id];
    spec.id = id;
    G.specs[id] = spec;
    G.order.push(id);
    var group = L.layerGroup();
    var built = false;
    group.on("add", function () {
      if (!built) { built = true; group.addLayer(BUILDERS[spec.kind](spec)); }
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
    if (kind === "icon") {
      return '<span class="gm-swatch-icon">' + iconHtml(item[3]) + "</span>";
    }
    return '<span class="gm-swatch gm-swatch-' + kind + '" style="' +
      (kind === "line" ? "border-color:" : "background:") + colour + '"></span>';
  }

  G.updateLegend = function () {
    var box = G.legend && G.legend.getContainer();
    if (!box) { return; }
    var html = "";
    G.order.forEach(function (id) {
      var spec = G.specs[id];
      if (!G.visible[id] || !spec.legend) { return; }
      html += '<div class="gm-legend-block" data-layer="' + id + '"><div class="gm-legend-title">' +
        spec.legend.title + "</div>";
      spec.legend.items.forEach(function (item) {
        html += '<div class="gm-legend-item">' + swatch(item) + " " + item[1] + "</div>";
      });
      html += "</div>";
    });
    box.innerHTML = html;
    box.style.display = html ? "" : "none";
  };

  /* ---- link to a ward: map.html#ward=E05000001 ---------------------------------------------- */

  G.applyHash = function () {
    var match = /(?:^#|&)ward=([^&]*)/.exec(window.location.hash);
    if (!match) { return; }
    var code;
    try { code = decodeURIComponent(match[1]); } catch (err) { return; }
    var i = G.data.ward.code.indexOf(code);
    if (i < 0) { return; }
    var feature = G.data.wards.features[i];
    G.map.fitBounds(L.geoJSON(feature).getBounds(), {maxZoom: 15, padding: [30, 30], animate: false});
    if (G.highlight) { G.map.removeLayer(G.highlight); }
    G.highlight = L.geoJSON(feature, {pane: "gm-highlight", interactive: false,
      style: function () { return {color: "#00e5ff", weight: 5, fill: false, opacity: 1}; }}).addTo(G.map);
    G.openWard(i, null, G.activeMeasure());
    G.selectedWard = code;
  };

  G.ready = function () {
    G.updateLegend();
    G.applyHash();
    window.addEventListener("hashchange", G.applyHash);
    window.requestAnimationFrame(function () {
      window.requestAnimationFrame(function () { G.renderedAt = window.performance.now(); });
    });
  };
})();
