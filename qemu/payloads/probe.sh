# probe: boot only (used by the launcher's KVM probe and for boot timing).
pass
