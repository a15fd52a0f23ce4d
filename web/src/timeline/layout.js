// The whole grid's shape from GET /timeline: for each month a heading row, then its
// photos in rows of `columns`. Pages ("chunks") are per month, CHUNK photos each, so
// that any row's photos are one chunk (or two) away from a month's cursor.
export const CHUNK = 120

// months: [{month, count, cursor}] -> rows: [{kind: 'heading', m} | {kind: 'cells', m, start}]
export function layout(months, columns) {
  const rows = []
  const headingRow = []
  months.forEach((month, m) => {
    headingRow.push(rows.length)
    rows.push({kind: 'heading', m})
    for (let start = 0; start < month.count; start += columns) rows.push({kind: 'cells', m, start})
  })
  return {rows, headingRow}
}

export function chunksOfRow(row, columns) {
  if (row.kind !== 'cells') return []
  const first = Math.floor(row.start / CHUNK)
  const last = Math.floor((row.start + columns - 1) / CHUNK)
  return first === last ? [first] : [first, last]
}

// "2024-03" -> "2024年3月" / "March 2024"
export function monthLabel(month, lang) {
  const [year, number] = month.split('-').map(Number)
  if (lang === 'zh') return `${year}年${number}月`
  return new Date(Date.UTC(year, number - 1, 1)).toLocaleDateString('en', {year: 'numeric', month: 'long', timeZone: 'UTC'})
}

export function duration(seconds) {
  const whole = Math.max(0, Math.round(seconds || 0))
  return `${Math.floor(whole / 60)}:${String(whole % 60).padStart(2, '0')}`
}
