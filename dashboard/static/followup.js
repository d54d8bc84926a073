// Follow-up texts: a live count of what the text costs, and a template's text filled in as
// the worker types its values.
//
// The rule it keeps: it counts exactly as the server does (dashboard/followup_pages.py over
// flows/segments.py), and says it in the same words: the text as it will be sent (line breaks
// as "\n", spaces trimmed at both ends as Python's str.strip trims them), GSM-7 when every
// character is in the GSM 03.38 basic set or its extension table (which costs two septets),
// else UCS-2 in UTF-16 code units (an emoji costs two); 160 septets in one text or 153 in each
// of several, 70 or 67 code units for UCS-2; a character's units never split between parts.
// tests/test_dashboard_followups.py runs these functions in Node against the server's. The
// page works without this file: "Check the length" asks the server for the same count.

export const MAX_SEGMENTS = 10;

// GSM 03.38 as the server's gsm0338 codec has it (the escape, \x1b, is never a character of a
// text; \f, in the extension table, is a control character and refused).
export const GSM7_BASIC =
  "\n\r !\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz" +
  "\u00a1\u00a3\u00a4\u00a5\u00a7\u00bf\u00c4\u00c5\u00c6\u00c7\u00c9\u00d1\u00d6\u00d8\u00dc" +
  "\u00df\u00e0\u00e4\u00e5\u00e6\u00e8\u00e9\u00ec\u00f1\u00f2\u00f6\u00f8\u00f9\u00fc" +
  "\u0393\u0394\u0398\u039b\u039e\u03a0\u03a3\u03a6\u03a8\u03a9";
export const GSM7_EXTENSION = "\f[\\]^{|}~\u20ac";

// What Python's str.isspace() calls a space: what str.strip() trims.
export const PYTHON_SPACES =
  "\t\n\u000b\f\r\u001c\u001d\u001e\u001f \u0085\u00a0\u1680\u2000\u2001\u2002\u2003\u2004" +
  "\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000";
const INVISIBLE = "\u00ad\u200b\u200c\u200d\u200e\u200f\u2060\ufeff";

export const CONTROL_PROBLEM =
  "The text has a character that cannot go in a text message (a control character): remove it";
export const UNREADABLE_PROBLEM =
  "The text has a character that could not be read (shown as \ufffd): type it again";

const LIMITS =
  "Up to 160 plain characters make one text; special characters (such as an emoji, a curly " +
  "quote or \u0175) make it 70.";
const GSM7_SINGLE = 160;
const GSM7_PART = 153;
const UCS2_SINGLE = 70;
const UCS2_PART = 67;

function isControl(code) {
  return (
    code <= 0x08 || code === 0x0b || code === 0x0c || (code >= 0x0e && code <= 0x1f) ||
    (code >= 0x7f && code <= 0x9f)
  );
}

/** What stops the text being sent whatever its length, or null. */
export function problem(text) {
  let unreadable = false;
  for (const char of text) {
    const code = char.codePointAt(0);
    if (isControl(code)) return CONTROL_PROBLEM;
    if ((code >= 0xd800 && code <= 0xdfff) || code === 0xfffd) unreadable = true;
  }
  return unreadable ? UNREADABLE_PROBLEM : null;
}

/** The text as it will be sent: line breaks as "\n", ends trimmed. */
export function prepared(text) {
  const lines = text.replace(/\r\n?/g, "\n");
  let start = 0;
  let end = lines.length;
  while (start < end && PYTHON_SPACES.includes(lines[start])) start += 1;
  while (end > start && PYTHON_SPACES.includes(lines[end - 1])) end -= 1;
  return lines.slice(start, end);
}

function gsm7Cost(char) {
  if (GSM7_BASIC.includes(char)) return 1;
  if (GSM7_EXTENSION.includes(char)) return 2;
  return null;
}

function parts(costs, part) {
  let count = 1;
  let used = 0;
  for (const cost of costs) {
    if (used + cost > part) {
      count += 1;
      used = 0;
    }
    used += cost;
  }
  return count;
}

/** {encoding, units, segments, special} for a prepared text; `special` is the first
 * character that makes it UCS-2 (null for GSM-7). */
export function measure(text) {
  const chars = Array.from(text);
  const septets = chars.map(gsm7Cost);
  if (septets.every((cost) => cost !== null)) {
    const units = septets.reduce((sum, cost) => sum + cost, 0);
    const segments = units <= GSM7_SINGLE ? 1 : parts(septets, GSM7_PART);
    return { encoding: "GSM-7", units, segments, special: null, codePoints: chars.length };
  }
  const costs = chars.map((char) => char.length);
  const units = text.length;
  const segments = units <= UCS2_SINGLE ? 1 : parts(costs, UCS2_PART);
  const special = chars[septets.indexOf(null)];
  return { encoding: "UCS-2", units, segments, special, codePoints: chars.length };
}

function number(value) {
  return String(value).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}

function plural(value, noun) {
  return `${number(value)} ${noun}${value === 1 ? "" : "s"}`;
}

function named(char) {
  if (char === "\t") return "a tab";
  if (PYTHON_SPACES.includes(char)) return "an unusual space";
  if (INVISIBLE.includes(char)) return "an invisible character";
  return `\u201c${char}\u201d`;
}

/** What the counter says about `text` as typed: the same words as the server's. */
export function describe(text) {
  const refused = problem(text);
  if (refused) return `${refused}.`;
  const sent = prepared(text);
  if (!sent) return "0 characters.";
  const count = measure(sent);
  let said = `${plural(count.units, "character")}: ${plural(count.segments, "text")}.`;
  if (count.encoding === "GSM-7") {
    said += " Plain characters (GSM-7): 160 characters a text, 153 each when it needs more.";
    if (count.units > count.codePoints) said += " Each ^ { } [ ] ~ | \u20ac and \\ counts as 2.";
  } else {
    said +=
      ` Uses special characters (UCS-2), such as ${named(count.special)}:` +
      " 70 characters a text, 67 each when it needs more.";
    if (count.units > count.codePoints) said += " Each emoji counts as 2.";
  }
  if (count.segments > MAX_SEGMENTS) {
    said += ` Too long: at most ${MAX_SEGMENTS} texts can go, so shorten it.`;
  }
  return said;
}

/** A template (checked on the server: names in braces, {{ and }} for a brace) filled in with
 * `values`; a name without a value is left empty. */
export function fillTemplate(template, values) {
  let filled = "";
  let at = 0;
  while (at < template.length) {
    const char = template[at];
    const next = template[at + 1];
    if ((char === "{" || char === "}") && next === char) {
      filled += char;
      at += 2;
    } else if (char === "{") {
      const end = template.indexOf("}", at);
      const name = template.slice(at + 1, end);
      filled += Object.hasOwn(values, name) ? values[name] : "";
      at = end + 1;
    } else {
      filled += char;
      at += 1;
    }
  }
  return filled;
}

function enhance(counter) {
  const message = counter.querySelector("[data-followup-message]");
  const textarea = counter.querySelector("textarea");
  const preview = counter.querySelector("[data-followup-preview]");
  const inputs = Array.from(counter.querySelectorAll("input[data-placeholder]"));
  const template = counter.dataset.template;
  const given = template === undefined ? {} : JSON.parse(counter.dataset.values || "{}");

  const visible = document.createElement("div");
  visible.className = "govuk-hint govuk-character-count__status";
  visible.setAttribute("aria-hidden", "true");
  const spoken = document.createElement("div");
  spoken.className = "govuk-character-count__sr-status govuk-visually-hidden";
  spoken.setAttribute("aria-live", "polite");
  message.after(visible, spoken);
  message.textContent = LIMITS;
  message.classList.add("govuk-visually-hidden");

  let timer = null;
  const text = () => {
    if (template === undefined) return textarea.value;
    const values = { ...given };
    for (const input of inputs) values[input.dataset.placeholder] = input.value;
    return fillTemplate(template, values);
  };
  const update = () => {
    const current = text();
    if (preview) preview.textContent = current;
    const said = describe(current);
    const tooLong = problem(current) !== null || measure(prepared(current)).segments > MAX_SEGMENTS;
    visible.textContent = said;
    visible.classList.toggle("govuk-error-message", tooLong);
    visible.classList.toggle("govuk-hint", !tooLong);
    if (textarea) textarea.classList.toggle("govuk-textarea--error", tooLong);
    clearTimeout(timer);
    timer = setTimeout(() => {
      spoken.textContent = said;
    }, 1000);
  };
  for (const field of textarea ? [textarea] : inputs) field.addEventListener("input", update);
  update();
}

if (typeof document !== "undefined") {
  for (const counter of document.querySelectorAll("[data-followup-counter]")) enhance(counter);
}
