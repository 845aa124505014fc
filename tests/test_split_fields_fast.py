"""split_fields' fast paths give what the tokenizer alone gives (the reference below is the
function as it was before them), on random access-log-like lines."""
import random
import re

from shared.formats.base import _split_plain, split_fields

_TOKEN = re.compile(r'\[[^\]]*\](?=\s|$)|(?:"[^"\\]*(?:\\.[^"\\]*)*"|[^\s"]+|")+')
_QUOTED = re.compile(r'"([^"\\]*(?:\\.[^"\\]*)*)"')


def reference(line):
    out = []
    for token in _TOKEN.findall(line):
        first = token[0]
        if first == "[" and token[-1] == "]" and len(token) > 1:
            out.append(token[1:-1])
        elif first == '"':
            q = _QUOTED.fullmatch(token)
            out.append((q.group(1).replace('\\"', '"') if "\\" in token else q.group(1))
                       if q else token)
        else:
            out.append(token)
    return out


def test_split_fields_matches_the_tokenizer_on_random_lines():
    rnd = random.Random(7)
    alphabet = ['"', "\\", "[", "]", " ", "\t", "a", "-", "1", ":", "é", "\u2003", '\\"', '" "']
    for _ in range(20_000):
        line = "".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 24)))
        assert split_fields(line) == reference(line), repr(line)


def test_split_fields_on_real_lines():
    lines = ['http 2018-07-02T22:23:00.186641Z app/x 1.2.3.4:80 "GET http://a/ HTTP/1.1" '
             '"curl/7.46.0" - - "Root=1-5" "-" "10.0.0.1:80" "200"',
             'tls 2.0 2020-05-01T00:00:00 net/x "h2","http/1.1" "a \\"b\\" c" '
             '[06/Feb/2019:00:00:38 +0000] x', "plain fields only here", ""]
    for line in lines:
        assert split_fields(line) == reference(line)


def test_split_fields_matches_the_tokenizer_on_lines_without_backslashes():
    # the str.split path (quotes and one bracket, no escapes): every way a quote or bracket
    # may fail to be a whole field
    rnd = random.Random(9)
    alphabet = ['"', "[", "]", " ", "  ", "\t", "a", "-", "1", ":", "é", "\u2003", '" "', "x y",
                '"GET / HTTP/1.1"', "[06/Feb/2019:00:00:38 +0000]", '""', ",", '"h2","http/1.1"',
                ' "-" ', '\t"a"\t', "\x1c"]
    fast = 0
    for _ in range(60_000):
        line = "".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 16)))
        assert split_fields(line) == reference(line), repr(line)
        fast += ('"' in line or "[" in line) and _split_plain(line) is not None
    assert fast > 1000
