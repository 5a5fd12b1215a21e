*** Settings ***
Documentation       Statements about the server process itself (protocol §2, §10): its refusal
...                 of a weak token secret and the shape of its logs. They need a reference
...                 server the kit starts, so they are skipped when the suites are pointed at a
...                 team's own server.

Library             Process
Resource            ../../resources/conformance.resource

Suite Setup         The Environment Is Ready
Suite Teardown      The Environment Is Released
Test Teardown       Run Keywords    Close All Devices    AND    Close Raw Connections    AND
...                     The Server Under Test Is The Run's Server Again


*** Variables ***
# 24 bytes: the length of the development secret of protocol 1.0, below HS256's 32.
${SHORT_SECRET}         ccs-dev-secret-change-me
# Where the server package comes from: a modified copy (CCS_SERVER_PATH), else this checkout.
${SERVER_CHECKOUT}      %{CCS_SERVER_PATH=${CURDIR}/../..}
# A refusal comes at start-up; a server still running after this has accepted what it must refuse.
${START_REFUSAL_TIMEOUT}    20s


*** Test Cases ***
The Reference Server Refuses To Start With A Token Secret Shorter Than 32 Bytes
    [Documentation]    A 24-byte ``CCS_TOKEN_SECRET``: the server exits at once naming the
    ...    variable and the 32-byte minimum, instead of signing with a weak key.
    [Tags]    spec:2-f    P15
    Own Server Configuration Is Required
    ${result}    Run Process    ${{ sys.executable }}    -m    ccs_server    serve
    ...    env:CCS_TOKEN_SECRET=${SHORT_SECRET}    env:CCS_PORT=0    cwd=${SERVER_CHECKOUT}
    ...    timeout=${START_REFUSAL_TIMEOUT}    on_timeout=kill
    The Server Should Have Exited By Itself    ${result}    a weak token secret
    Should Contain    ${result.stderr}    CCS_TOKEN_SECRET
    Should Contain    ${result.stderr}    32

The Reference Server Refuses To Start On A Database That Could Lose Acknowledged Messages
    [Documentation]    Its database sessions with ``synchronous_commit=off``, so a crash could lose
    ...    messages already acknowledged: the server exits at once naming the setting (P1).
    [Tags]    spec:10-f    P1
    Own Server Configuration Is Required
    ${url}    Database URL
    VAR    ${unsafe}    ${{ $url + ('&' if '?' in $url else '?') + 'synchronous_commit=off' }}
    ${result}    Run Process    ${{ sys.executable }}    -m    ccs_server    serve
    ...    env:DATABASE_URL=${unsafe}    env:CCS_PORT=0    cwd=${SERVER_CHECKOUT}
    ...    timeout=${START_REFUSAL_TIMEOUT}    on_timeout=kill
    The Server Should Have Exited By Itself    ${result}    a database that may lose acknowledged messages
    Should Contain    ${result.stderr}    synchronous_commit=off

Every Log Record Of The Server Is One JSON Object
    [Documentation]    A node of its own serves a session, a message, a bad frame and a refused
    ...    token; every line it logged is a JSON object with ts, level, logger and msg.
    [Tags]    spec:10-e    P18
    Own Server Configuration Is Required
    VAR    ${log}    ${OUTPUT_DIR}/server/conformance-node-structured.log
    Start Reference Node    conformance-logs    CCS_LOG_FILE=${log}
    Use Reference Node    conformance-logs
    A Team Room Where Alice And Bob Are Members And Carol Is Not
    Devices Are Connected    alice-phone    bob-tablet
    "alice-phone" Sends "for the log" To "team-room"
    Send Raw    alice-phone    {"type":"teleport","ref":"t1"}
    Connect Device Expecting Failure    carol-phone    token=not.a.token
    Close All Devices
    Stop Reference Node    conformance-logs
    @{files}    Server Log Files    ${log}
    ${records}    Log Records Should Be Structured    @{files}
    Should Be True    ${records} >= 4    only ${records} log records


*** Keywords ***
The Server Should Have Exited By Itself
    [Documentation]    The server process ended on its own with a failure exit code; still running
    ...    at the timeout (killed by the test), it had started despite ``what``.
    [Arguments]    ${result}    ${what}
    VAR    ${message}    expected the server to refuse to start with ${what} and exit, but it
    ...    was still running after ${START_REFUSAL_TIMEOUT} (rc ${result.rc}); its log ends:
    ...    ${result.stderr[-600:]}    separator=${SPACE}
    Should Be True    ${result.rc} > 0    ${message}

Own Server Configuration Is Required
    [Documentation]    Skips the test when the server under test is not one the kit may start.
    ${own}    Own Server Configuration Is Possible
    Skip If    not ${own}    the suites are pointed at a server the kit does not start

The Server Under Test Is The Run's Server Again
    [Documentation]    Teardown: later tests talk to the run's server, not this suite's node.
    Attach To Server    ${SUT_URL}
