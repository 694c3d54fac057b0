"""The Java behaviours behind XNAT's messages: hash codes, HashSet order, split, isBlank."""

from __future__ import annotations

import random
import shutil
import subprocess
from pathlib import Path

import pytest
from xnatnode.commandjson.javaisms import JavaHashSet, is_blank, jstr, split_count, string_hash

_JAVA_ORDER = """
import java.io.*;
import java.util.*;
public class Order {
  public static void main(String[] a) throws IOException {
    BufferedReader in = new BufferedReader(new InputStreamReader(System.in, "UTF-8"));
    for (String line; (line = in.readLine()) != null; ) {
      String[] f = line.split("\\t", -1);
      List<String> items = Arrays.asList(Arrays.copyOfRange(f, 2, f.length));
      Set<String> s;
      if (f[0].equals("copy")) s = new HashSet<>(items);
      else if (f[0].equals("cap")) { s = new HashSet<>(Integer.parseInt(f[1])); s.addAll(items); }
      else { s = new HashSet<>(); s.addAll(items); }
      System.out.println(String.join("\\t", s));
    }
  }
}
"""


def test_string_hash_known_values() -> None:
    assert string_hash("hello") == 99162322
    assert string_hash("") == 0
    assert string_hash(None) == 0
    assert string_hash("apple") == 93029210
    assert string_hash("banana") == (-1396355227) & 0xFFFFFFFF
    assert string_hash("\U0001f600") == ((0xD83D * 31 + 0xDE00) & 0xFFFFFFFF)  # UTF-16 units


def test_hash_set_order_known_from_java() -> None:
    assert JavaHashSet.copy_of(["apple", "banana", "cherry"]).ordered() == [
        "banana",
        "apple",
        "cherry",
    ]
    names = JavaHashSet(2)
    for name in ("project", "project-id"):
        names.add(name)
    assert names.join() == "project-id, project"


def test_split_and_blank_like_java() -> None:
    assert split_count("1:2:3", ":") == 3
    assert split_count("1:2:", ":") == 2
    assert split_count("::", ":") == 0
    assert split_count("", ":") == 1
    assert is_blank(None)
    assert is_blank(" \t\n")
    assert is_blank("")
    assert not is_blank("\u00a0")  # Java's isWhitespace excludes the no-break space
    assert jstr(None) == "null"
    assert jstr(["a", None]) == "[a, null]"
    assert jstr(True) == "true"


@pytest.mark.skipif(shutil.which("java") is None, reason="no java on PATH")
def test_hash_set_order_matches_a_real_jvm(tmp_path: Path) -> None:
    """Differential test against java.util.HashSet for the constructors the plugin uses."""
    rng = random.Random(20261124)
    alphabet = "abcdefghijklmnopqrstuvwxyz-_0123456789"
    cases: list[tuple[str, int, list[str]]] = []
    for _ in range(150):
        items = [
            "".join(rng.choices(alphabet, k=rng.randint(1, 12))) for _ in range(rng.randint(1, 40))
        ]
        mode = rng.choice(["cap", "copy", "default"])
        cases.append((mode, rng.randint(0, 20), items))
    source = tmp_path / "Order.java"
    source.write_text(_JAVA_ORDER)
    stdin = "".join("\t".join([mode, str(cap), *items]) + "\n" for mode, cap, items in cases)
    result = subprocess.run(
        ["java", str(source)], input=stdin, capture_output=True, text=True, timeout=120, check=True
    )
    java_lines = result.stdout.splitlines()
    assert len(java_lines) == len(cases)
    for (mode, cap, items), java in zip(cases, java_lines, strict=True):
        if mode == "copy":
            ours = JavaHashSet.copy_of(items)
        else:
            ours = JavaHashSet(cap if mode == "cap" else None)
            for item in items:
                ours.add(item)
        assert "\t".join(str(x) for x in ours.ordered()) == java, (mode, cap, items)
