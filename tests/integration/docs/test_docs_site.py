"""`make docs` builds the HTML site, and every plugin and role page renders its options table.

The site is opened in headless Chromium (Debian's `chromium`, bindep.txt [test]) through a
loopback HTTP server: one browser run loads every page in an iframe of a check page, whose
script reports, per page, its title and each options table's height and option anchors.
What must be there comes from the collection itself: the plugins and roles from the source
tree's directories (tools/doc-check's listing), their options from ansible-doc on the
installed artifact, the guides from docs/*.md.
"""

import functools
import html
import http.server
import importlib.machinery
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
SITE = REPO / '.build' / 'docs' / 'html'
INSTALLED = REPO / '.build' / 'installed'
COLLECTION = 'nixfleet.containers'
PLUGIN_PAGES = 'collections/nixfleet/containers'

CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
                  '--disable-background-networking', '--disable-component-update', '--disable-sync']

CHECK_PAGE = '''<!DOCTYPE html>
<html><body><pre id="result">pending</pre>
{frames}
<script>
window.addEventListener('load', function () {{
  var pages = {{}};
  document.querySelectorAll('iframe').forEach(function (frame) {{
    var doc = frame.contentDocument;
    pages[frame.getAttribute('src')] = {{
      title: doc.title,
      h1: (doc.querySelector('h1') || {{textContent: ''}}).textContent,
      tables: Array.from(doc.querySelectorAll('table.ansible-option-table')).map(function (table) {{
        return {{
          height: table.getBoundingClientRect().height,
          options: Array.from(table.querySelectorAll('[id^="parameter-"]')).map(function (e) {{
            return e.id.slice('parameter-'.length);
          }})
        }};
      }})
    }};
  }});
  document.getElementById('result').textContent = JSON.stringify(pages);
}});
</script></body></html>
'''


def load_doc_check():
    loader = importlib.machinery.SourceFileLoader('doc_check', str(REPO / 'tools' / 'doc-check'))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def venv_tool(name):
    return str(Path(sys.executable).parent / name)


@pytest.fixture(scope='module')
def site():
    """`make docs` (artifact, antsibull-docs, Sphinx); the site's directory."""
    result = subprocess.run(['make', '--no-print-directory', '-C', str(REPO), 'docs'],
                            capture_output=True, text=True, timeout=900, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert (SITE / 'index.html').is_file()
    return SITE


@pytest.fixture(scope='module')
def expected_pages(site):
    """{page path: top-level option names} for every plugin and role of the source tree
    (ansible-doc on the artifact that `make docs` installed)."""
    environment = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(INSTALLED),
                       ANSIBLE_COLLECTIONS_SCAN_SYS_PATH='false')
    pages = {}
    for plugin_type, names in load_doc_check().documented_items(str(REPO)):
        fqcns = ['%s.%s' % (COLLECTION, name) for name in names]
        result = subprocess.run([venv_tool('ansible-doc'), '-t', plugin_type, '--json'] + fqcns,
                                capture_output=True, text=True, timeout=300, check=True, env=environment)
        docs = json.loads(result.stdout)
        for name, fqcn in zip(names, fqcns):
            if plugin_type == 'role':
                options = ['%s--%s' % (entry, option)
                           for entry, spec in docs[fqcn]['entry_points'].items()
                           for option in spec.get('options') or {}]
            else:
                options = list(docs[fqcn]['doc'].get('options') or {})
            pages['%s/%s_%s.html' % (PLUGIN_PAGES, name, plugin_type)] = options
    return pages


def guide_titles():
    """{page path: first heading} of docs/*.md."""
    titles = {}
    for guide in sorted((REPO / 'docs').glob('*.md')):
        heading = next(line for line in guide.read_text(encoding='utf-8').splitlines() if line.startswith('# '))
        titles['guides/%s.html' % guide.stem] = heading[2:].replace('`', '').strip()
    return titles


class SiteHandler(http.server.SimpleHTTPRequestHandler):
    check_page = b''

    def do_GET(self):  # noqa: N802 (http.server's name)
        if self.path != '/__check.html':
            super().do_GET()
            return
        self.send_response(200)
        self.send_header('Content-Type', 'text/html; charset=utf-8')
        self.send_header('Content-Length', str(len(self.check_page)))
        self.end_headers()
        self.wfile.write(self.check_page)

    def log_message(self, *args):
        pass


def render_in_chromium(site_dir, pages):
    """Open every page of PAGES in one headless Chromium; what the check page saw, per page."""
    chromium = shutil.which('chromium')
    assert chromium, 'chromium is missing: `make deps` installs it (bindep.txt [test])'
    frames = '\n'.join('<iframe src="/%s" width="1200" height="900"></iframe>' % html.escape(page)
                       for page in pages)
    handler = type('Handler', (SiteHandler,), {'check_page': CHECK_PAGE.format(frames=frames).encode()})
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), functools.partial(handler, directory=str(site_dir)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with tempfile.TemporaryDirectory(prefix='nixfleet-chromium-') as profile:
            result = subprocess.run(
                [chromium, *CHROMIUM_FLAGS, '--user-data-dir=%s' % profile, '--dump-dom',
                 'http://127.0.0.1:%d/__check.html' % server.server_address[1]],
                capture_output=True, text=True, timeout=300, check=False)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    match = re.search(r'<pre id="result">(.*?)</pre>', result.stdout, re.S)
    assert match and match.group(1) != 'pending', 'chromium exit %d\n%s' % (result.returncode, result.stderr[-3000:])
    return dict((page.lstrip('/'), seen) for page, seen in json.loads(html.unescape(match.group(1))).items())


def _plain_quotes(text):
    for fancy, plain in ((u'\u2018', "'"), (u'\u2019', "'"), (u'\u201c', '"'), (u'\u201d', '"')):
        text = text.replace(fancy, plain)
    return text


def test_every_plugin_and_role_page_renders_its_options_table_and_every_guide_is_there(site, expected_pages):
    expected = expected_pages
    guides = guide_titles()
    assert any(page.endswith('_module.html') for page in expected)
    assert any(page.endswith('_inventory.html') for page in expected)
    assert guides

    seen = render_in_chromium(site, list(expected) + list(guides) + ['index.html'])

    problems = []
    for page, options in sorted(expected.items()):
        rendered = seen.get(page)
        if not rendered or not rendered['tables']:
            problems.append('%s: no options table (title %r)' % (page, rendered and rendered['title']))
            continue
        shown = set()
        for table in rendered['tables']:
            if table['height'] <= 0:
                problems.append('%s: an options table is not displayed' % page)
            shown.update(option for option in table['options'] if '/' not in option)
        missing = set(options) - shown
        if missing or not options:
            problems.append('%s: options %s not in its table (table has %s)'
                            % (page, sorted(missing) or 'none documented', sorted(shown)))
    for page, title in sorted(guides.items()):
        rendered = seen.get(page)
        # Sphinx's smartquotes turn ' and " into typographic quotes.
        if not rendered or _plain_quotes(title) not in _plain_quotes(rendered['h1']):
            problems.append('%s: heading %r not rendered (got %r)' % (page, title, rendered and rendered['h1']))
    assert not problems, '\n'.join(problems)


def test_the_site_index_links_every_plugin_and_guide(site, expected_pages):
    index = (site / 'index.html').read_text(encoding='utf-8')
    collection_index = (site / PLUGIN_PAGES / 'index.html').read_text(encoding='utf-8')
    for page in expected_pages:
        assert os.path.basename(page) in collection_index, page
    for page in guide_titles():
        assert 'href="%s"' % page in index, page
