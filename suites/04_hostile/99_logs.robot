*** Settings ***
Documentation       Tokens never reach the logs (P15): after the whole barrage - tokens on the
...                 upgrade header, in the query string, in hello, bad, expired and forged ones -
...                 no token handed out by the suite, and nothing JWT-shaped, is in the server's
...                 log files.

Resource            ../../resources/hostile.resource

Suite Setup         The Hostile Arena Is Set Up
Suite Teardown      The Hostile Arena Is Torn Down
Test Setup          Snapshot Stored State
Test Teardown       The Case Left No Trace


*** Test Cases ***
No Token Appears In The Server Logs
    [Documentation]    Runs last: scans the suite node's captured output and structured log file.
    [Tags]    spec:2-g    P15
    The Server Configuration Of This Suite Is Required
    ${files}    Server Log Files    ${HOSTILE_LOG}
    ${checked}    Server Logs Should Not Contain Tokens    @{files}
    Should Be True    ${checked} > 20    only ${checked} tokens were handed out
