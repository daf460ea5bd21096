"""The configuration table of the docs, built from config.py so the two cannot drift.

Each setting of ``Config`` read from the environment becomes a row: its variable, the
why-comment written above it (settings that follow one comment with no blank line or
comment between share its row) and its default as the code has it; a comment's last
sentence "Unset: …" says what an unset value means, in the default column. A mkdocs hook
(``hooks:`` in mkdocs.yml) puts the table where docs/configuration.md says
``<!-- config-table -->``; ``python scripts/config_doc.py`` prints it.
"""

import ast
import re
from pathlib import Path

CONFIG = Path(__file__).resolve().parent.parent / "config.py"
MARKER = "<!-- config-table -->"
ENV_GETTERS = {"get", "_env_int", "_env_bool"}


def _env_call(node):
    """The call that reads the environment in a setting's value, if any."""
    for sub in ast.walk(node):
        if isinstance(sub, ast.Call):
            func = sub.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in ENV_GETTERS and sub.args and isinstance(sub.args[0], ast.Constant):
                return name, sub
    return None


def _default(getter, call, source):
    """The default as the docs show it: the value, and the expression when it is one."""
    if len(call.args) < 2:
        return "off" if getter == "_env_bool" else "unset"
    node = call.args[1]
    text = ast.get_source_segment(source, node)
    try:
        value = eval(compile(ast.Expression(node), "config.py", "eval"), {"__builtins__": {}})
    except NameError:
        return f"`{text}`"
    if value == "":
        return "empty"
    if value is False:
        return "off"
    shown = f"`{value}`"
    return shown if isinstance(value, str) or repr(value) == text else f"{shown} (`{text}`)"


def _comment_above(lines, lineno):
    """The comment lines right above line ``lineno`` (1-based), as a list of texts."""
    comment, line = [], lineno - 1
    while line > 0 and lines[line - 1].strip().startswith("#"):
        comment.insert(0, lines[line - 1].strip().lstrip("#").strip())
        line -= 1
    return comment


def _split_unset(description, default):
    """A comment's closing "Unset: …" moves to the default column."""
    if " Unset: " not in f" {description}":
        return description, default
    description, _, unset = f" {description}".rpartition(" Unset: ")
    return description.strip(), f"unset: {unset}"


def settings(source=None):
    """Rows of (names, description, defaults), in config.py's order."""
    source = source if source is not None else CONFIG.read_text(encoding="utf-8")
    lines = source.splitlines()
    config = next(
        n for n in ast.parse(source).body if isinstance(n, ast.ClassDef) and n.name == "Config"
    )
    rows, previous_end = [], None
    for statement in config.body:
        if not isinstance(statement, (ast.Assign, ast.AnnAssign)):
            previous_end = statement.end_lineno
            continue
        found = _env_call(statement.value)
        comment = _comment_above(lines, statement.lineno)
        follows = previous_end == statement.lineno - 1 and not comment
        previous_end = statement.end_lineno
        if found is None:
            continue
        getter, call = found
        name = call.args[0].value
        default = _default(getter, call, source)
        description, default = _split_unset(" ".join(comment), default)
        if follows and rows:
            rows[-1][0].append(name)
            rows[-1][2].append(default)
        else:
            rows.append(([name], description, [default]))
    return rows


def section_links(docs_dir):
    """Each section title of the docs, to its page and anchor (as mkdocs' toc makes it)."""
    links = {}
    for page in sorted(Path(docs_dir).glob("*.md")):
        for title in re.findall(r"^#{1,4} (.+)$", page.read_text(encoding="utf-8"), re.M):
            anchor = re.sub(r"[\s]+", "-", re.sub(r"[^\w\s-]", "", title.lower()).strip())
            links.setdefault(title.strip(), f"{page.name}#{anchor}")
    return links


def _link_sections(text, links):
    """``see "Title"`` in a comment becomes a link to that section of the docs."""

    def link(match):
        title = match.group(1)
        return f"see [{title}]({links[title]})" if title in links else match.group(0)

    return re.sub(r'see "([^"]+)"', link, text)


def table(source=None, links=None):
    """The Markdown table of every setting."""
    out = ["| variable | meaning | default |", "|---|---|---|"]
    for names, description, defaults in settings(source):
        shown = ", ".join(f"`{n}`" for n in names)
        if not description:
            # The build fails (mkdocs --strict or not) rather than show an empty row.
            raise ValueError(f"config.py: {names[0]} has no why-comment above it")
        meaning = _link_sections(description.replace("|", "\\|"), links or {})
        out.append(f"| {shown} | {meaning} | {'; '.join(defaults)} |")
    return "\n".join(out)


def on_page_markdown(markdown, page, config, **kwargs):
    """mkdocs hook: the table where the configuration page asks for it."""
    if MARKER in markdown:
        return markdown.replace(MARKER, table(links=section_links(config["docs_dir"])))
    return markdown


if __name__ == "__main__":
    print(table())
