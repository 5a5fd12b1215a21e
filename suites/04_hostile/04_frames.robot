# robocop: off=line-too-long
*** Settings ***
Documentation       Malformed frames on an authenticated connection (P16): each gets its documented
...                 error in-band and the connection keeps working, or the documented close code.
...                 Nothing is stored. ``$ARENA`` is a conversation eve belongs to.

Resource            ../../resources/hostile.resource

Test Tags           P16    spec:3.4-d    spec:6-a
Suite Setup         The Hostile Arena Is Set Up
Suite Teardown      The Hostile Arena Is Torn Down
Test Setup          Snapshot Stored State
Test Teardown       The Case Left No Trace

Test Template       Frame "${frame}" Is Answered With "${outcome}"


*** Test Cases ***                              FRAME                                                                                           OUTCOME
Text That Is Not JSON                           hello there                                                                                     error invalid_json
    [Tags]    spec:6-b
Truncated JSON                                  {"type":"send","ref":"t1","conversation_id":"$ARENA","client_msg_id":"t1","body":{"a":         error invalid_json
    [Tags]    spec:6-b
A JSON Array                                    \[{"type":"ping","ref":"a1"}]                                                                    error invalid_json
    [Tags]    spec:6-b
JSON Null                                       null                                                                                            error invalid_json
    [Tags]    spec:6-b
Unknown Message Type                            {"type":"teleport","ref":"u1"}                                                                  error unknown_type
    [Tags]    spec:4.1-c
Missing Ref                                     {"type":"ping"}                                                                                 error bad_request
    [Tags]    spec:4.1-c
Ref Longer Than 64 Characters                   {"type":"ping","ref":"$LONG_ID"}                                                                error bad_request
    [Tags]    spec:4.1-c
Type That Is Not A String                       {"type":7,"ref":"w0"}                                                                           error bad_request
    [Tags]    spec:4.1-c
Conversation Id That Is A Number                {"type":"send","ref":"w1","conversation_id":7,"client_msg_id":"w1","body":1}                    error bad_request
    [Tags]    spec:1-a
Client Message Id That Is An Object             {"type":"send","ref":"w2","conversation_id":"$ARENA","client_msg_id":{"a":1},"body":1}          error bad_request
    [Tags]    spec:4.2-a
Send Without A Body                             {"type":"send","ref":"w3","conversation_id":"$ARENA","client_msg_id":"w3"}                      error bad_request
    [Tags]    spec:4.2-b
Receipt Kind That Is Not Known                  {"type":"receipt","ref":"w4","conversation_id":"$ARENA","kind":"seen","seq":1}                  error bad_request
    [Tags]    spec:4.4-a
Presence Query That Is Not A List               {"type":"presence_query","ref":"w5","user_ids":"everyone"}                                      error bad_request
    [Tags]    spec:4.7-b
JSON Nested 10,000 Deep                         {"type":"send","ref":"d1","conversation_id":"$ARENA","client_msg_id":"d1","body":$DEEP}         error bad_request
    [Tags]    spec:6-c
A Send Nested Too Deep Gets Its Ref Echoed      {"type":"send","ref":"deep-ref-7","conversation_id":"$ARENA","client_msg_id":"d2","body":$DEEP}    bad_request    deep-ref-7
    [Tags]    spec:6-c    spec:4.1-d
    [Template]    Frame "${frame}" Gets Error "${code}" Echoing Ref "${ref}"
Body Over The Body Limit                        {"type":"send","ref":"b1","conversation_id":"$ARENA","client_msg_id":"b1","body":"$BIG"}        error too_large
    [Tags]    spec:4.2-c
Empty Client Message Id                         {"type":"send","ref":"c1","conversation_id":"$ARENA","client_msg_id":"","body":1}               error bad_request
    [Tags]    spec:4.2-a
Client Message Id Over 128 Characters           {"type":"send","ref":"c2","conversation_id":"$ARENA","client_msg_id":"$LONG_ID","body":1}       error too_large
    [Tags]    spec:4.2-a
Client Message Id Containing NUL                {"type":"send","ref":"c3","conversation_id":"$ARENA","client_msg_id":"a\\u0000b","body":1}      error bad_request
    [Tags]    spec:4.2-a
Body With NaN                                   {"type":"send","ref":"n1","conversation_id":"$ARENA","client_msg_id":"n1","body":NaN}           error bad_request
    [Tags]    spec:6-c
Body With A Number Overflowing To Infinity      {"type":"send","ref":"n2","conversation_id":"$ARENA","client_msg_id":"n2","body":1e400}         error bad_request
    [Tags]    spec:6-c
Body With A Lone Surrogate                      {"type":"send","ref":"n3","conversation_id":"$ARENA","client_msg_id":"n3","body":"\\ud800"}     error bad_request
    [Tags]    spec:6-c
Ref With A Lone Surrogate                       {"type":"ping","ref":"\\udfff"}                                                                 error bad_request
    [Tags]    spec:4.1-c    spec:6-c
Send To An Unknown Conversation                 {"type":"send","ref":"k1","conversation_id":"$UNKNOWN","client_msg_id":"k1","body":1}           error forbidden
    [Tags]    spec:4.1-h


*** Keywords ***
Frame "${frame}" Gets Error "${code}" Echoing Ref "${ref}"
    [Documentation]    The error ``code`` comes back in-band carrying the frame's own ``ref``, and
    ...    the connection still works. Nothing is stored.
    Eve Is Connected Raw
    Raw Send Text    eve    ${frame}
    ${error}    Raw Error Should Be    eve    ${code}
    Should Be Equal    ${error}[ref]    ${ref}    expected the error to echo ref '${ref}', got ${error}
    Raw Connection Should Still Work    eve
    Nothing Was Stored
