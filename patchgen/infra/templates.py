"""Jinja2 templates for inserted C and all prose (StrictUndefined).

A missing variable is an error when the template is rendered, never a
placeholder mailed out as is.
"""

from functools import lru_cache

import jinja2
import jinja2.sandbox

from patchgen.infra.data import data_dir
from patchgen.infra.errors import BadRule


# Rules that keep their templates in their own package (Rule.template_folder):
# "<rule id>/<name>" is looked up there first.  The loader keeps this very
# dict, so a rule registered after the environment was made is found too.
_RULE_FOLDERS: dict[str, jinja2.BaseLoader] = {}


def add_template_folder(prefix: str, folder) -> None:
    """Serve the templates in *folder* as "<prefix>/<name>"."""
    _RULE_FOLDERS[prefix] = jinja2.FileSystemLoader(str(folder))


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    # Sandboxed: a template (a rule's, or a user's --cover-template) may
    # only read the values it is given, never reach Python's internals
    # ({{ cycler.__init__.__globals__.os.popen(...) }} is a SecurityError).
    env = jinja2.sandbox.SandboxedEnvironment(
        loader=jinja2.ChoiceLoader([
            jinja2.PrefixLoader(_RULE_FOLDERS),
            jinja2.FileSystemLoader(str(data_dir("templates")))]),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    env.filters["as_function"] = lambda name: f"{name}()"
    return env


def check_templates(names: list[str]) -> None:
    """Load (compile) each template now, so a broken rule fails at load."""
    for name in names:
        try:
            environment().get_template(name)
        except jinja2.TemplateError as exc:
            raise BadRule(f"template {name} cannot be loaded: {exc}") from exc


def render(name: str, **context) -> str:
    try:
        return environment().get_template(name).render(**context)
    except jinja2.UndefinedError as exc:
        raise BadRule(f"template {name} uses a value the rule did not give: "
                      f"{exc.message}") from exc
    except jinja2.TemplateError as exc:
        raise BadRule(f"template {name} failed: {exc}") from exc
