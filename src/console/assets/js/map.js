// A map with no tiles: the points over the districts' seats, projected onto an SVG with a
// scale bar. Nothing is fetched from outside kepu.
import { t, lang } from './i18n.js';

const NS = 'http://www.w3.org/2000/svg';
const svg = (tag, attrs = {}, ...kids) => {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== null && v !== undefined) el.setAttribute(k, String(v));
  for (const kid of kids.flat()) if (kid) el.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  return el;
};

const KM_PER_DEGREE = 111.32;

/**
 * An SVG map: `districts` ([{code, name_zh, name_en, seat:{lat,lon}}]) as labelled seats,
 * `points` ([{lat, lon, label, href, kind}]) as dots, `centre` (a {lat, lon}) as a ring.
 * The list beside the map carries the same information for keyboards and screen readers.
 */
export function cityMap({ districts = [], points = [], centre = null, label, fit = false }) {
  // The whole city, or (`fit`) just around the points and the centre, at least ~10 km across.
  const framed = fit ? [...points, ...(centre ? [centre] : [])] : [...districts.map((d) => d.seat), ...points, ...(centre ? [centre] : [])];
  const lats = framed.map((p) => p.lat);
  const lons = framed.map((p) => p.lon);
  const span = (values, least) => {
    const lo = Math.min(...values);
    const hi = Math.max(...values);
    const grow = Math.max(0, least - (hi - lo)) / 2;
    return [lo - grow, hi + grow];
  };
  const [lat0, lat1] = fit ? span(lats, 0.09) : [Math.min(...lats, 23.0), Math.max(...lats, 23.2)];
  const [lon0, lon1] = fit ? span(lons, 0.1) : [Math.min(...lons, 113.2), Math.max(...lons, 113.4)];
  const pad = fit ? 0.012 : 0.02;
  const minLat = lat0 - pad;
  const maxLat = lat1 + pad;
  const minLon = lon0 - pad;
  // Room on the right for the easternmost seat's name.
  const maxLon = lon1 + pad + (fit ? 0.03 : 0.1);
  const midLat = (minLat + maxLat) / 2;
  const kx = Math.cos((midLat * Math.PI) / 180);
  const width = 640;
  const height = Math.max(240, Math.min(900, Math.round((width * (maxLat - minLat)) / ((maxLon - minLon) * kx))));
  const x = (lon) => ((lon - minLon) / (maxLon - minLon)) * width;
  const y = (lat) => height - ((lat - minLat) / (maxLat - minLat)) * height;
  const name = (d) => (lang() === 'en' ? d.name_en : d.name_zh);

  const inside = (p) => p.lat >= minLat && p.lat <= maxLat && p.lon >= minLon && p.lon <= maxLon;
  const seats = districts.filter((d) => inside(d.seat)).map((d) =>
    svg('g', { class: 'seat' },
      svg('rect', { x: x(d.seat.lon) - 3, y: y(d.seat.lat) - 3, width: 6, height: 6 }),
      svg('text', { x: x(d.seat.lon) + 6, y: y(d.seat.lat) + 4 }, name(d))));
  // A dot shows its item in the list beside (the list is the way in for keyboards).
  const dots = points.map((p) => {
    const dot = svg('circle', { cx: x(p.lon), cy: y(p.lat), r: 6, class: `dot ${p.kind || ''} ${p.select ? 'selectable' : ''}` }, svg('title', {}, p.label));
    if (p.select) dot.addEventListener('click', p.select);
    return dot;
  });
  const ring = centre ? svg('circle', { cx: x(centre.lon), cy: y(centre.lat), r: 8, class: 'centre' }, svg('title', {}, t('map.centre'))) : null;

  // A scale bar of a round number of km, about a fifth of the width.
  const kmPerPx = ((maxLon - minLon) * kx * KM_PER_DEGREE) / width;
  const target = (width / 5) * kmPerPx;
  const km = [1, 2, 5, 10, 20, 50, 100].find((k) => k >= target) || 100;
  const barPx = km / kmPerPx;
  const scale = svg('g', { class: 'scale' },
    svg('line', { x1: 12, y1: height - 14, x2: 12 + barPx, y2: height - 14 }),
    svg('text', { x: 12, y: height - 20 }, `${km} km`));
  const north = svg('text', { x: width - 12, y: 22, class: 'north', 'text-anchor': 'end' }, 'N ↑');

  return svg('svg', { viewBox: `0 0 ${width} ${height}`, class: 'map', role: 'img', 'aria-label': label },
    svg('rect', { x: 0, y: 0, width, height, class: 'sea' }), seats, ring, dots, scale, north);
}
