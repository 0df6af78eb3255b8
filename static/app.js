// doctrina page script (no dependencies). Pages work without it; it adds two things:
// drafts stream in live over server-sent events, and a citation opens its source passage
// in the side panel without leaving the draft. Everything inserted as HTML comes from the
// server's own escaped templates; streamed model text is inserted as text only.
(function () {
  'use strict';

  function $(selector, root) { return (root || document).querySelector(selector); }

  // The session's CSRF token (base.html puts it in a meta tag); sent with every API write.
  function csrfToken() {
    var meta = $('meta[name="csrf-token"]');
    return meta ? meta.getAttribute('content') : '';
  }

  function showError(container, message) {
    var p = document.createElement('p');
    p.className = 'error';
    p.setAttribute('role', 'alert');
    p.textContent = message;
    container.appendChild(p);
  }

  // --- Streaming drafts -----------------------------------------------------------------
  var form = $('#draft-form');
  if (form && window.fetch && window.ReadableStream && window.TextDecoder) {
    form.addEventListener('submit', function (event) {
      event.preventDefault();
      var data = new FormData(form);
      var body = {
        mode: data.get('mode') || 'llm',
        task: data.get('task') || '',
        guidance: data.get('guidance') || ''
      };
      var box = $('#stream');
      var out = $('.stream-text', box);
      var status = $('.stream-status', box);
      var button = $('#draft-button');
      // The page's language: the server puts the translated status lines on the box.
      var say = function (key, english) { return box.getAttribute('data-' + key) || english; };
      box.hidden = false;
      out.textContent = '';
      status.textContent = say('retrieving', 'Retrieving sources…');
      button.disabled = true;
      var finished = false;

      function handle(block) {
        var name = 'message';
        var payload = '';
        block.split('\n').forEach(function (line) {
          if (line.indexOf('event:') === 0) { name = line.slice(6).trim(); }
          else if (line.indexOf('data:') === 0) { payload += line.slice(5).replace(/^ /, ''); }
        });
        if (!payload) { return; }
        var data = JSON.parse(payload);
        if (name === 'start') {
          status.textContent = say('drafting', 'Drafting…');
        } else if (name === 'delta') {
          out.textContent += data.text;
          out.scrollTop = out.scrollHeight;
        } else if (name === 'done') {
          finished = true;
          status.textContent = data.error
            ? say('stopped', 'Stopped:') + ' ' + data.error + ' ' + say('kept', '(the partial text was kept)')
            : say('checking', 'Done. Checking citations…');
          var next = data.url + '?v=' + data.version;
          if (data.error) { next += '&error=' + encodeURIComponent(data.error); }
          window.location.assign(next);
        } else if (name === 'error') {
          finished = true;
          throw new Error(data.error.message);
        }
      }

      fetch('/api/sections/' + encodeURIComponent(form.dataset.section) + '/draft', {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'accept': 'text/event-stream',
          'x-csrf-token': csrfToken()
        },
        body: JSON.stringify(body)
      }).then(function (response) {
        var type = response.headers.get('content-type') || '';
        if (!response.ok || type.indexOf('text/event-stream') < 0) {
          return response.json().then(function (json) {
            throw new Error(json && json.error ? json.error.message : 'HTTP ' + response.status);
          }, function () { throw new Error('HTTP ' + response.status); });
        }
        var reader = response.body.getReader();
        var decoder = new TextDecoder();
        var buffer = '';
        function pump() {
          return reader.read().then(function (chunk) {
            if (chunk.done) {
              if (!finished) {
                throw new Error(say('closed', 'The connection closed before the draft finished; reload the page to see what was stored.'));
              }
              return undefined;
            }
            buffer += decoder.decode(chunk.value, { stream: true }).replace(/\r\n/g, '\n');
            var blocks = buffer.split('\n\n');
            buffer = blocks.pop();
            blocks.forEach(handle);
            return pump();
          });
        }
        return pump();
      }).catch(function (error) {
        status.textContent = '';
        showError(status, error.message);
        button.disabled = false;
      });
    });
  }

  // --- Citation side panel --------------------------------------------------------------
  var current = $('#current');
  var panel = $('#source');
  if (current && panel && window.fetch) {
    document.addEventListener('click', function (event) {
      var link = event.target.closest ? event.target.closest('a.cite') : null;
      if (!link || !current.contains(link)) { return; }
      event.preventDefault();
      var url = '/sections/' + encodeURIComponent(current.dataset.section) + '/sources/' +
        encodeURIComponent(link.dataset.n) + '?v=' + encodeURIComponent(current.dataset.version) +
        (link.dataset.s ? '&s=' + encodeURIComponent(link.dataset.s) : '') + '&fragment=true';
      fetch(url).then(function (response) {
        if (!response.ok) { throw new Error('HTTP ' + response.status); }
        return response.text();
      }).then(function (html) {
        panel.innerHTML = html;
        Array.prototype.forEach.call(document.querySelectorAll('a.cite.active'), function (a) {
          a.classList.remove('active');
        });
        link.classList.add('active');
        var mark = panel.querySelector('mark');
        if (mark) { mark.scrollIntoView({ block: 'nearest' }); }
        if (window.history && window.history.replaceState) {
          window.history.replaceState(null, '', link.href);
        }
      }).catch(function () {
        window.location.assign(link.href);
      });
    });
  }

  // --- Job progress ---------------------------------------------------------------------
  // A job page polls its JSON every 500 ms and updates the bar, the counts, the status and
  // the per-file rows (as text); when the job ends the page reloads once to show the final
  // server-rendered state. Without JavaScript the page is simply refreshed by hand.
  var jobBox = $('#job');
  if (jobBox && jobBox.getAttribute('data-finished') !== 'true' && window.fetch) {
    var jobId = jobBox.getAttribute('data-job');
    var poll = function () {
      fetch('/api/jobs/' + encodeURIComponent(jobId), { headers: { Accept: 'application/json' } })
        .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
        .then(function (job) {
          var p = job.progress;
          $('#job-progress').value = p.percent;
          $('#job-progress').textContent = p.percent + '%';
          $('#job-counts').textContent = p.files_done + ' of ' + p.files_total + ' files · ' +
            p.passages_embedded + ' passages embedded' +
            (p.files_failed > 0 ? ' · ' + p.files_failed + ' failed' : '');
          var status = $('#job-status');
          status.textContent = job.status;
          status.className = 'status status-' + job.status;
          var rows = $('#job-files');
          rows.textContent = '';
          job.files.forEach(function (f) {
            var tr = document.createElement('tr');
            [f.name, f.doc_id || '—', f.outcome + (f.error ? ': ' + f.error : '')].forEach(function (text) {
              var td = document.createElement('td');
              td.textContent = text;
              tr.appendChild(td);
            });
            rows.appendChild(tr);
          });
          if (job.status === 'done' || job.status === 'failed') {
            window.location.reload();
          } else {
            window.setTimeout(poll, 500);
          }
        })
        .catch(function () { window.setTimeout(poll, 2000); });
    };
    window.setTimeout(poll, 500);
  }

  // --- Evaluation runs ------------------------------------------------------------------
  // A run page whose run is still queued or running polls the run list every second,
  // updates the bar and the status (as text), and reloads once when the run ends.
  var runBox = $('#eval-run');
  if (runBox && runBox.getAttribute('data-finished') !== 'true' && window.fetch) {
    var runId = Number(runBox.getAttribute('data-run'));
    var pollRun = function () {
      fetch('/api/eval/runs', { headers: { Accept: 'application/json' } })
        .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
        .then(function (body) {
          var run = (body.runs || []).filter(function (x) { return x.id === runId; })[0];
          if (!run) { window.setTimeout(pollRun, 2000); return; }
          var bar = $('#eval-progress');
          if (bar) { bar.max = Math.max(run.total, 1); bar.value = run.done; }
          var counts = $('#eval-counts');
          if (counts) { counts.textContent = run.done + ' of ' + run.total + ' questions'; }
          var status = $('#eval-status');
          status.textContent = run.status;
          status.className = 'status status-' + run.status;
          if (run.status === 'done' || run.status === 'failed') {
            window.location.reload();
          } else {
            window.setTimeout(pollRun, 1000);
          }
        })
        .catch(function () { window.setTimeout(pollRun, 2000); });
    };
    window.setTimeout(pollRun, 1000);
  }
}());
