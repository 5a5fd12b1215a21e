# robocop: off=line-too-long
*** Settings ***
Documentation       Hostile data is data (P16): bodies with SQL, markup, NUL, bidirectional
...                 overrides and emoji sequences are stored (parameterised SQL only) and come back
...                 byte-identical from the database, the live fan-out and ``history``.

Resource            ../../resources/hostile.resource

Test Tags           P16    spec:4.2-d    spec:9-b
Suite Setup         The Hostile Arena Is Set Up
Suite Teardown      The Hostile Arena Is Torn Down
Test Setup          Snapshot Stored State
Test Teardown       The Case Left No Trace

Test Template       Body ${body} Is Stored And Returned Byte-Identical


*** Test Cases ***                              BODY
SQL Injection Text                              {"text": "'; DROP TABLE messages;--"}
SQL Injection As A Key                          {"'; DELETE FROM conversations;--": "x", "a\\"b": "c"}
Script Markup                                   {"text": "<script>alert(document.cookie)</script>", "html": "<img src=x onerror=alert(1)>"}
NUL Characters                                  {"text": "before\\u0000after", "only": "\\u0000"}
Right-To-Left Overrides                         {"text": "abc\\u202eexe.txt\\u202c and \\u2066isolate\\u2069"}
Emoji ZWJ Sequences                             {"text": "\\ud83d\\udc69\\u200d\\ud83d\\udc69\\u200d\\ud83d\\udc67 \\ud83c\\udff3\\ufe0f\\u200d\\ud83c\\udf08 \\ud83d\\udc4d\\ud83c\\udffd"}
Every Kind In One String                        "'; DROP TABLE messages;-- <script>\\u0000\\u202e\\ud83d\\udc68\\u200d\\ud83d\\udcbb"
