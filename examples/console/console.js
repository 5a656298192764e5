// The example's admin console: the admin routes (/api/v2) in a page. Plain browser
// JavaScript, no build step. Safety rules: the admin token lives in this closure only
// (never in storage, a cookie or a URL), and every value from the server reaches the
// page through textContent or a form value, never as HTML.
'use strict'

;(() => {
  const $ = (id) => document.getElementById(id)
  let token = null
  let config = null

  function say (message, isError = false) {
    $('status').textContent = message
    $('status').className = isError ? 'error' : ''
  }

  function cell (text, tag = 'td') {
    const el = document.createElement(tag)
    if (text !== undefined) el.textContent = text
    return el
  }

  function button (label, onClick, className) {
    const b = document.createElement('button')
    b.type = 'button'
    b.textContent = label
    if (className) b.className = className
    b.addEventListener('click', onClick)
    return b
  }

  function option (value, label) {
    const o = document.createElement('option')
    o.value = value
    o.textContent = label ?? value
    return o
  }

  /** An admin route call; errors carry the route's own message (Auth0's body). */
  async function api (method, path, body) {
    const response = await fetch(config.adminBase + path, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      cache: 'no-store',
      credentials: 'omit',
    })
    if (response.status === 401) {
      signOut('Your session has ended: sign in again.')
      throw new Error('signed out')
    }
    const text = await response.text()
    const data = text === '' ? null : JSON.parse(text)
    if (!response.ok) throw new Error(data?.message ?? `${method} ${path}: ${response.status}`)
    return data
  }

  async function signIn (event) {
    event.preventDefault()
    const clientId = $('client-id').value.trim()
    const response = await fetch(config.tokenEndpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ grant_type: 'client_credentials', client_id: clientId, client_secret: $('client-secret').value, audience: config.audience }),
      cache: 'no-store',
      credentials: 'omit',
    })
    $('client-secret').value = ''
    const data = await response.json().catch(() => ({}))
    if (!response.ok || typeof data.access_token !== 'string') return say(`Sign-in refused: ${data.error_description ?? response.status}`, true)
    token = data.access_token
    $('who').textContent = `Signed in as ${clientId}`
    document.querySelector('.who').hidden = false
    $('sign-in').hidden = true
    $('console').hidden = false
    say('')
    await refresh()
  }

  function signOut (message = 'Signed out.') {
    token = null
    document.querySelector('.who').hidden = true
    $('console').hidden = true
    $('sign-in').hidden = false
    $('grants').replaceChildren()
    $('tokens').replaceChildren()
    $('history').replaceChildren()
    $('reason').value = ''
    say(message)
  }

  async function loadGrants () {
    const query = new URLSearchParams({ per_page: '100' })
    if ($('filter-client').value.trim() !== '') query.set('client_id', $('filter-client').value.trim())
    if ($('filter-audience').value !== '') query.set('audience', $('filter-audience').value)
    const grants = await api('GET', `/client-grants?${query}`)
    $('grants').replaceChildren(...grants.map(grantRow))
    if (grants.length === 0) $('grants').append(emptyRow(4, 'No grants.'))
  }

  function grantRow (grant) {
    const row = document.createElement('tr')
    row.dataset.grant = grant.id
    const scopes = document.createElement('input')
    scopes.className = 'scopes'
    scopes.value = grant.scope.join(' ')
    scopes.setAttribute('aria-label', `Scopes of ${grant.client_id} for ${grant.audience}`)
    const scopeCell = cell()
    scopeCell.append(scopes)
    const actions = cell()
    actions.className = 'actions'
    actions.append(
      button('Save scopes', () => act(async () => {
        const scope = scopes.value.split(/\s+/).filter(Boolean)
        await api('PATCH', `/client-grants/${encodeURIComponent(grant.id)}`, { scope, ...reason() })
        return `Scopes of ${grant.client_id} for ${grant.audience} are now: ${scope.join(' ') || 'none'}.`
      }), 'secondary'),
      button('Delete grant', () => {
        if (!window.confirm(`Delete the grant of ${grant.client_id} for ${grant.audience}? Its tokens for that audience stop working now.`)) return
        return act(async () => {
          // DELETE carries no body at Auth0: the reason goes in the query string.
          const query = new URLSearchParams(reason()).toString()
          await api('DELETE', `/client-grants/${encodeURIComponent(grant.id)}${query === '' ? '' : `?${query}`}`)
          return `Deleted the grant of ${grant.client_id} for ${grant.audience}: its tokens are refused from the next request.`
        })
      }, 'danger'),
    )
    row.append(cell(grant.client_id), cell(grant.audience), scopeCell, actions)
    return row
  }

  async function loadTokens () {
    const tokens = await api('GET', '/blacklists/tokens')
    $('tokens').replaceChildren(...tokens.map((t) => {
      const row = document.createElement('tr')
      const jti = cell()
      jti.append(cell(t.jti, 'code'))
      row.append(cell(t.aud), jti)
      return row
    }))
    if (tokens.length === 0) $('tokens').append(emptyRow(2, 'No blacklisted tokens.'))
  }

  function emptyRow (columns, text) {
    const row = document.createElement('tr')
    const c = cell(text)
    c.colSpan = columns
    row.append(c)
    return row
  }

  /** The reason typed for the next changes, in the shape the routes take; {} when none. */
  function reason () {
    const text = $('reason').value.trim()
    return text === '' ? {} : { reason: text }
  }

  const audienceText = (audience) => audience === '*' ? 'every audience' : audience
  const issuerText = (issuer) => issuer === undefined ? '' : ` (issuer ${issuer})`

  /** What a log entry changed, in a few words. */
  function describe (e) {
    switch (e.type) {
      case 'token': return `${e.jti} for ${e.aud}`
      case 'tokens': return `${e.tokens.length} tokens` + (e.tokens.length > 0 ? ` (${e.tokens[0].jti} for ${e.tokens[0].aud}${e.tokens.length > 1 ? ', …' : ''})` : '')
      case 'client': return `${e.clientId} for ${audienceText(e.audience)}${issuerText(e.issuer)}`
      case 'subject': return `${e.subject}${issuerText(e.issuer)}`
      case 'session': return `${e.sessionId}${issuerText(e.issuer)}`
      case 'grant': return `${e.action} ${e.clientId} for ${e.audience}${Array.isArray(e.scope) ? ` [${e.scope.join(' ')}]` : ''}`
      default: return ''
    }
  }

  async function loadHistory () {
    let page
    try {
      page = await api('GET', '/revocation-log?take=50')
    } catch (err) {
      // Without read:logs (or on a store without a log) the rest of the console still works.
      if (token !== null) $('history').replaceChildren(emptyRow(5, `History unavailable: ${err.message}`))
      return
    }
    $('history').replaceChildren(...page.entries.map((e) => {
      const row = document.createElement('tr')
      const time = cell(new Date(e.at).toLocaleString())
      time.className = 'time'
      time.title = new Date(e.at).toISOString()
      row.append(time, cell(e.type), cell(describe(e)), cell(e.actor ?? '—'), cell(e.reason ?? '—'))
      return row
    }))
    if (page.entries.length === 0) $('history').append(emptyRow(5, 'No changes recorded yet.'))
  }

  async function refresh () {
    await Promise.all([loadGrants(), loadTokens(), loadHistory()])
  }

  /** Runs an action, reports its outcome, and shows the lists as they now are. */
  async function act (run) {
    try {
      const message = await run()
      // A reason belongs to one change: never carried over to the next by accident.
      $('reason').value = ''
      await refresh()
      say(message)
    } catch (err) {
      if (token !== null) say(err.message, true)
    }
  }

  function onSubmit (id, run) {
    $(id).addEventListener('submit', (event) => {
      event.preventDefault()
      void act(run)
    })
  }

  async function start () {
    config = await (await fetch('/admin/config.json', { cache: 'no-store' })).json()
    for (const id of ['filter-audience', 'blacklist-audience', 'revoke-audience']) {
      for (const audience of config.apiAudiences) $(id).append(option(audience))
    }
    $('sign-in').addEventListener('submit', (event) => {
      signIn(event).catch((err) => say(`Sign-in failed: ${err.message}`, true))
    })
    $('sign-out').addEventListener('click', () => signOut())
    // Enter in the reason field must not submit anything: the reason goes with the next action.
    $('reason-form').addEventListener('submit', (event) => event.preventDefault())
    $('grant-filter').addEventListener('submit', (event) => {
      event.preventDefault()
      loadGrants().catch((err) => say(err.message, true))
    })
    onSubmit('blacklist', async () => {
      const aud = $('blacklist-audience').value
      const jti = $('blacklist-jti').value.trim()
      await api('POST', '/blacklists/tokens', { aud, jti, ...reason() })
      $('blacklist-jti').value = ''
      return `Blacklisted ${jti} for ${aud}.`
    })
    onSubmit('revoke-client', async () => {
      const clientId = $('revoke-client-id').value.trim()
      const audience = $('revoke-audience').value
      const issuer = $('revoke-issuer').value.trim()
      await api('POST', '/revocations/clients', { client_id: clientId, ...(audience === '' ? {} : { audience }), ...(issuer === '' ? {} : { issuer }), ...reason() })
      $('revoke-issuer').value = ''
      return `Revoked ${clientId} for ${audience || 'every audience'}${issuer === '' ? '' : ` from ${issuer}`}: its tokens issued up to now are refused.`
    })
  }

  document.addEventListener('DOMContentLoaded', () => {
    start().catch((err) => say(`The console could not start: ${err.message}`, true))
  })
})()
