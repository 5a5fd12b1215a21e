*** Settings ***
Documentation       Defects the model walks found, pinned as plain regression tests: each replays the
...                 shrunk walk with the kit's vocabulary and asserts what the protocol says.

Resource            ../../resources/ccs.resource


*** Test Cases ***
A Retry Of A Key Whose Row Another Program Inserted Is A Duplicate
    [Documentation]    A row written straight into ``messages`` (§9) holds the device's key; a
    ...    retry of that key with the same JSON value answers the original with
    ...    ``duplicate: true`` (§4.2-f, P2). The server used to answer
    ...    ``idempotency_conflict``: the directly inserted row had no send digest.
    [Tags]    seed-1.1    spec:4.2-f
    User "u0" With Devices    u0-d0
    Create Conversation    c0    u0
    Connect Device    u0-d0
    ${body}    Evaluate    {"text": "written by another program", "n": 1}
    ${row}    Insert Message As Another Program    c0    u0-d0    ${body}    client_msg_id=k-sql-1
    ${reply}    Send Message Expecting Reply    u0-d0    c0    ${body}    client_msg_id=k-sql-1
    Should Be Equal    ${reply}[type]    ack    the retry was refused: ${reply}
    Should Be Equal    ${reply}[duplicate]    ${True}    the retry was not a duplicate: ${reply}
    Should Be Equal As Integers    ${reply}[seq]    ${row}[seq]
