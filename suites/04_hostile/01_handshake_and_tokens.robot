*** Settings ***
Documentation       Authentication at connect (P15): a bad token is refused on the upgrade with
...                 HTTP 401 and in ``hello`` with ``auth_failed`` and close 4501; an expired one
...                 with ``token_expired`` (close 4003, reconnect with a fresh token). Only HS256
...                 is accepted; ``none`` and other algorithms are refused.

Resource            ../../resources/hostile.resource

Test Tags           P15
Suite Setup         The Hostile Arena Is Set Up
Suite Teardown      The Hostile Arena Is Torn Down
Test Setup          Snapshot Stored State
Test Teardown       The Case Left No Trace

Test Template       Connecting With A "${kind}" Token Given In "${where}" Ends With "${outcome}"


*** Test Cases ***                              KIND                    WHERE       OUTCOME
Hello Without Any Token                         valid                   none        auth_failed 4501
    [Tags]    spec:3.1-e
Malformed Token On The Upgrade                  malformed               header      HTTP 401 auth_failed
    [Tags]    spec:2-a    spec:3-a
Malformed Token In Hello                        malformed               hello       auth_failed 4501
    [Tags]    spec:2-a    spec:3.1-e
Badly Signed Token On The Upgrade               bad_signature           header      HTTP 401 auth_failed
    [Tags]    spec:2-a    spec:3-a
Badly Signed Token In Hello                     bad_signature           hello       auth_failed 4501
    [Tags]    spec:2-a    spec:3.1-e
Token With Algorithm None In The Query          alg_none                query       HTTP 401 auth_failed
    [Tags]    spec:2-a    spec:3-a
Token With Algorithm None In Hello              alg_none                hello       auth_failed 4501
    [Tags]    spec:2-a    spec:3.1-e
Token With A Refused Algorithm                  alg_hs512               hello       auth_failed 4501
    [Tags]    spec:2-a
Expired Token On The Upgrade                    expired                 header      HTTP 401 token_expired
    [Tags]    spec:2-d    spec:3-a
Expired Token In Hello                          expired                 hello       token_expired 4003
    [Tags]    spec:2-d    spec:3.1-e
Token Not Yet Valid                             not_yet_valid           hello       auth_failed 4501
    [Tags]    spec:2-e
Token For Another Audience                      wrong_audience          hello       auth_failed 4501
    [Tags]    spec:2-a
Token From Another Issuer                       wrong_issuer            header      HTTP 401 auth_failed
    [Tags]    spec:2-a    spec:3-a
Token Without Expiry                            no_expiry               hello       auth_failed 4501
    [Tags]    spec:2-a
Token Naming An Unknown Device                  unknown_device          hello       auth_failed 4501
    [Tags]    spec:2-b
Token Naming Another User's Device              other_users_device      query       HTTP 401 auth_failed
    [Tags]    spec:2-b    spec:3-a
A Valid Token Is Accepted (Control Case)        valid                   header      welcome
