"""HTML helpers."""


def escape(text, quote=False):
    """Escape &, < and > (and double quotes if `quote`)."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    if quote:
        text = text.replace('"', "&quot;")
    return text


def tag(name, body, **attrs):
    parts = [name]
    for key, value in attrs.items():
        if value is None:
            continue
        parts.append('%s="%s"' % (key.rstrip("_"), escape(str(value), quote=True)))
    return "<%s>%s</%s>" % (" ".join(parts), body, name)


def void_tag(name, **attrs):
    parts = [name]
    for key, value in attrs.items():
        if value is None:
            continue
        parts.append('%s="%s"' % (key.rstrip("_"), escape(str(value), quote=True)))
    return "<%s />" % " ".join(parts)
