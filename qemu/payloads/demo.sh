# demo: the project demo; same as multi.
. /lib/vireo/payloads/multi.sh
